import Foundation
import TestSupport
import Testing

@testable import DecisionFlow
@testable import DecisionFlowCheckpoints

/// The reference PyTorch implementation's outputs (../shared/fixtures/reference), reproduced.
enum ReferenceFixtures {
    static let directory = SharedFolder.url.appendingPathComponent("fixtures/reference")

    static func load(_ name: String) throws -> Safetensors.Contents {
        try Safetensors.read(directory.appendingPathComponent("\(name).safetensors").path)
    }

    /// The model configuration written in a fixture's metadata.
    static func configuration(_ metadata: [String: String]) throws -> ModelConfiguration {
        func int(_ key: String) throws -> Int { try #require(metadata[key].flatMap { Int($0) }, "metadata \(key)") }
        func float(_ key: String) throws -> Float {
            try #require(metadata[key].flatMap { Float($0) }, "metadata \(key)")
        }
        return ModelConfiguration(
            stateDimension: try int("state_dim"), actionDimension: try int("act_dim"), contextLength: try int("K"),
            embeddingDimension: try int("hidden"), layerCount: try int("n_layer"), headCount: try int("n_head"),
            mlpDimension: try int("n_inner"),
            activation: try #require(Activation(rawValue: metadata["activation"] ?? "")),
            dropout: 0.1, maxEpisodeLength: try int("max_ep_len"),
            attention: try #require(AttentionKind(rawValue: metadata["attention"] ?? "")),
            actionTanh: metadata["action_tanh"] == "true", layerNormEpsilon: try float("layer_norm_epsilon"),
            flowEpsilon: try float("flow_eps"))
    }

    /// A model with the fixture's initial weights, and its input batch.
    static func modelAndBatch(_ contents: Safetensors.Contents, name: String) throws -> (
        DecisionTransformer, TrajectoryBatch
    ) {
        let configuration = try configuration(contents.metadata)
        let states = try #require(contents.tensors["input/states"])
        let B = states.shape[0]
        let T = states.shape[1]
        let model = DecisionTransformer(configuration: configuration, batchCapacity: B, seed: 0)
        try model.load(stateDictionary: contents.tensors, prefix: "param/", source: name)
        let batch = TrajectoryBatch(
            capacity: B, timesteps: T, stateDimension: configuration.stateDimension,
            actionDimension: configuration.actionDimension)
        batch.states = states.values
        batch.actions = try #require(contents.tensors["input/actions"]).values
        batch.returnsToGo = try #require(contents.tensors["input/returns_to_go"]).values
        batch.timestepIndices = try #require(contents.tensors["input/timesteps"]?.integers).map { Int32($0) }
        batch.mask = try #require(contents.tensors["input/attention_mask"]).values
        return (model, batch)
    }
}

@Suite struct ReferenceParityTests {
    // FACTS/fixtures tolerance: |ours − ref| ≤ 1e-5 + 1e-4·|ref|. Float sums in another order
    // differ in the last bits; that is the only reason for it.
    static let atol = 1e-5
    static let rtol = 1e-4

    /// The parity comparison catches a NaN: one action prediction poisoned (as a kernel that
    /// produced a NaN at one position would leave it), or every one from some position on (as
    /// a NaN in a running sum spreads), fails with a message that names the element.
    @Test func aNaNInAParityComparisonFailsNamingTheElement() throws {
        let name = "dt_flow_small"
        let contents = try ReferenceFixtures.load(name)
        let (model, batch) = try ReferenceFixtures.modelAndBatch(contents, name: name)
        _ = model.forward(batch, training: false)
        let expected = try #require(contents.tensors["output/action_preds"]).values
        let ours = Array(model.actionPredictionBuffer)
        #expect(closeness(ours, expected, atol: Self.atol, rtol: Self.rtol) == nil, "unpoisoned, the outputs agree")

        var one = ours
        let poisoned = ours.count / 2 + 1
        one[poisoned] = .nan
        let mismatch = try #require(closeness(one, expected, atol: Self.atol, rtol: Self.rtol))
        #expect(mismatch.offCount == 1 && mismatch.firstNonFinite?.index == poisoned)
        withKnownIssue {
            expectClose(one, expected, atol: Self.atol, rtol: Self.rtol, "\(name) action_preds")
        } matching: { issue in
            "\(issue)".contains("element \(poisoned) is nan")
        }

        var tail = ours
        for index in poisoned..<tail.count { tail[index] = .nan }
        let spread = try #require(closeness(tail, expected, atol: Self.atol, rtol: Self.rtol))
        #expect(spread.offCount == ours.count - poisoned && spread.firstNonFinite?.index == poisoned)
        #expect("\(spread)".contains("\(ours.count - poisoned) of \(ours.count) elements off"))
    }

    @Test(arguments: ["dt_flow_small", "dt_flow_mid", "dt_softmax_small", "dt_flow_long"])
    func forwardBackwardAndOneAdamWStep(name: String) throws {
        let contents = try ReferenceFixtures.load(name)
        let (model, batch) = try ReferenceFixtures.modelAndBatch(contents, name: name)
        let loss = model.forward(batch, training: false)
        func expected(_ key: String) throws -> [Float] { try #require(contents.tensors[key], "\(name) \(key)").values }

        expectClose(
            Array(model.actionPredictionBuffer), try expected("output/action_preds"), atol: Self.atol, rtol: Self.rtol,
            "\(name) action_preds")
        expectClose(
            Array(model.statePredictionBuffer), try expected("output/state_preds"), atol: Self.atol, rtol: Self.rtol,
            "\(name) state_preds")
        expectClose(
            Array(model.returnPredictionBuffer), try expected("output/return_preds"), atol: Self.atol, rtol: Self.rtol,
            "\(name) return_preds")
        expectClose([loss], try expected("output/loss"), atol: Self.atol, rtol: Self.rtol, "\(name) loss")

        model.backward(batch)
        expectClose(
            [model.gradientNorm()], try expected("output/grad_norm_before_clip"), atol: Self.atol, rtol: Self.rtol,
            "\(name) grad norm")
        for entry in model.layout.entries {
            // Gradients are sums over every token: atol 1e-5 on values of order 1e-2 to 1.
            expectClose(
                Array(model.gradients[entry.range]), try expected("grad/\(entry.name)"), atol: 1e-5, rtol: Self.rtol,
                "\(name) grad \(entry.name)")
        }

        // The training pass computes the last block's MLP and ln_f for state tokens only, and
        // no state or return predictions: the same loss and gradients.
        let compactLoss = model.forward(batch, training: false, actionsOnly: true)
        expectClose([compactLoss], try expected("output/loss"), atol: Self.atol, rtol: Self.rtol, "\(name) compact loss")
        expectClose(
            Array(model.actionPredictionBuffer), try expected("output/action_preds"), atol: Self.atol, rtol: Self.rtol,
            "\(name) compact action_preds")
        model.backward(batch)
        for entry in model.layout.entries {
            expectClose(
                Array(model.gradients[entry.range]), try expected("grad/\(entry.name)"), atol: 1e-5, rtol: Self.rtol,
                "\(name) compact grad \(entry.name)")
        }

        var optimizer = AdamW(layout: model.layout, settings: AdamW.Settings(weightDecay: 1e-4))
        clipGradientNorm(of: model, maxNorm: 0.25)
        optimizer.update(model, learningRate: 1e-3)
        for entry in model.layout.entries {
            expectClose(
                Array(model.parameters[entry.range]), try expected("adamw1/\(entry.name)"), atol: 1e-5, rtol: Self.rtol,
                "\(name) adamw1 \(entry.name)")
        }
    }
}
