import Foundation
import TestSupport
import Testing

@testable import DecisionFlow
@testable import DecisionFlowCheckpoints

/// A reference state dict (the fixture's weights, saved under plain PyTorch names) imports
/// into a checkpoint that reproduces the reference's outputs.
@Suite struct ImportTests {
    func writeStateDict(from fixture: String, to path: String) throws -> Safetensors.Contents {
        let contents = try ReferenceFixtures.load(fixture)
        let params = contents.tensors.filter { $0.key.hasPrefix("param/") }.sorted { $0.key < $1.key }
        var storage = params.map { $0.value.values }
        let data = try storage.withUnsafeMutableBufferPointer { buffers -> Data in
            var pointers: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = []
            for (index, (name, tensor)) in params.enumerated() {
                pointers.append(
                    (
                        String(name.dropFirst("param/".count)), tensor.shape,
                        buffers[index].withUnsafeBufferPointer { $0 }
                    ))
            }
            return try Safetensors.serialize(pointers, metadata: ["format": "pt"])
        }
        try data.write(to: URL(fileURLWithPath: path))
        return contents
    }

    @Test func importedStateDictReproducesTheReference() throws {
        let scratch = try ScratchDirectory()
        let contents = try writeStateDict(from: "dt_flow_small", to: scratch.path("model.safetensors"))
        let json =
            #"{"state_dim": 11, "act_dim": 3, "hidden_size": 32, "n_layer": 2, "n_head": 2, "n_inner": 128, "max_length": 5, "max_ep_len": 100, "activation_function": "relu", "attention": "flow", "scale": 1000, "env": "hopper", "state_mean": [0,0,0,0,0,0,0,0,0,0,0], "state_std": [1,1,1,1,1,1,1,1,1,1,1]}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: scratch.path("model.json")))
        let checkpoint = try Checkpoint.importing(
            stateDictionary: scratch.path("model.safetensors"), description: scratch.path("model.json"))
        try checkpoint.write(to: scratch.path("imported.safetensors"))
        let policy = try DecisionPolicy(checkpointPath: scratch.path("imported.safetensors"))
        #expect(policy.encoding.rewardScale == 1000 && policy.encoding.stateScale == [Float](repeating: 1, count: 11))
        #expect(policy.encoding.maxTimestep == 99 && policy.encoding.padding == .right)
        #expect(try Checkpoint.read(scratch.path("imported.safetensors")).environment == "hopper")
        let (_, batch) = try ReferenceFixtures.modelAndBatch(contents, name: "dt_flow_small")
        let model = DecisionTransformer(
            checkpoint: try Checkpoint.read(scratch.path("imported.safetensors")), batchCapacity: 3)
        model.forward(batch)
        expectClose(
            Array(model.actionPredictionBuffer), try #require(contents.tensors["output/action_preds"]).values, atol: 1e-5,
            rtol: 1e-4, "imported action_preds")
    }

    @Test func mismatchedDescriptionsAreReported() throws {
        let scratch = try ScratchDirectory()
        _ = try writeStateDict(from: "dt_flow_small", to: scratch.path("model.safetensors"))
        func problem(_ json: String) -> String? {
            do {
                try Data(json.utf8).write(to: URL(fileURLWithPath: scratch.path("model.json")))
                _ = try Checkpoint.importing(
                    stateDictionary: scratch.path("model.safetensors"), description: scratch.path("model.json"))
                return nil
            } catch {
                return "\(error)"
            }
        }
        let stats = #""state_mean": [0,0,0,0,0,0,0,0,0,0,0], "state_std": [1,1,1,1,1,1,1,1,1,1,1]"#
        // A wider model than the weights: the first mismatching tensor is named.
        #expect(
            problem(
                #"{"state_dim": 11, "act_dim": 3, "hidden_size": 64, "n_layer": 2, "n_head": 2, "max_length": 5, "max_ep_len": 100, \#(stats)}"#
            )?.contains("embed_timestep.weight") == true)
        #expect(
            problem(
                #"{"state_dim": 11, "act_dim": 3, "hidden_size": 32, "n_layer": 2, "n_head": 2, "n_inner": 128, "max_length": 5, "max_ep_len": 100, "attention": "linear", \#(stats)}"#
            )?.contains("attention 'linear'") == true)
        #expect(
            problem(
                #"{"state_dim": 11, "act_dim": 3, "hidden_size": 32, "n_layer": 2, "n_head": 2, "max_length": 5, "max_ep_len": 100, "state_mean": [0], "state_std": [1]}"#
            )?.contains("state_mean") == true)
        #expect(problem(#"{"state_dim": 11}"#)?.contains("lacks the field") == true)
    }
}

/// State dicts as GPU training saves them (issue #12): GPT-2's U8 mask buffers, F16 and BF16
/// weights.
@Suite struct ImportDTypeTests {
    static let configuration = ModelConfiguration(
        stateDimension: 5, actionDimension: 2, contextLength: 4, embeddingDimension: 16, layerCount: 2, headCount: 2,
        maxEpisodeLength: 50, attention: .softmax)

    /// The model's weights as raw tensors of `dtype`, plus GPT-2's buffers when asked.
    static func stateDict(
        _ model: DecisionTransformer, dtype: SafetensorsTensor.DType, buffers: Int? = nil
    ) -> [(name: String, dtype: SafetensorsTensor.DType, shape: [Int], bytes: [UInt8])] {
        let values = model.parameterValues
        var tensors: [(name: String, dtype: SafetensorsTensor.DType, shape: [Int], bytes: [UInt8])] =
            model.layout.entries.map { entry in
                let bytes: [UInt8] = values[entry.range].flatMap { value -> [UInt8] in
                    switch dtype {
                    case .float16: return withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { Array($0) }
                    case .bfloat16:
                        return withUnsafeBytes(of: UInt16(value.bitPattern >> 16).littleEndian) { Array($0) }
                    default: return withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
                    }
                }
                return (entry.name, dtype, entry.shape, bytes)
            }
        if let n = buffers {
            for block in 0..<model.configuration.layerCount {
                let mask: [UInt8] = (0..<(n * n)).map { $0 % n <= $0 / n ? 1 : 0 }  // lower triangle
                tensors.append(("transformer.h.\(block).attn.bias", .uint8, [1, 1, n, n], mask))
                tensors.append(
                    (
                        "transformer.h.\(block).attn.masked_bias", .float32, [],
                        withUnsafeBytes(of: Float(-1e4).bitPattern.littleEndian) { Array($0) }
                    ))
            }
        }
        return tensors
    }

    func load(_ tensors: [(name: String, dtype: SafetensorsTensor.DType, shape: [Int], bytes: [UInt8])]) throws
        -> DecisionTransformer
    {
        let data = try Safetensors.serialize(raw: tensors, metadata: [:])
        let model = DecisionTransformer(configuration: Self.configuration, batchCapacity: 1, seed: 0, threads: 1)
        try model.load(stateDictionary: try Safetensors.parse(data, file: "state.safetensors").tensors, source: "state")
        return model
    }

    @Test func gpt2BuffersAreCheckedAndSkipped() throws {
        let source = DecisionTransformer(configuration: Self.configuration, batchCapacity: 1, seed: 7, threads: 1)
        let loaded = try load(Self.stateDict(source, dtype: .float32, buffers: 64))
        #expect(loaded.parameterValues == source.parameterValues)
        // A mask smaller than the model's token count is refused, naming the buffer.
        do {
            _ = try load(Self.stateDict(source, dtype: .float32, buffers: 8))
            Issue.record("an 8-token mask was accepted for a 12-token model")
        } catch let error as CheckpointError {
            #expect(error.problem.contains("attn.bias") && error.problem.contains("12 tokens"), "\(error)")
        }
    }

    @Test(arguments: [SafetensorsTensor.DType.float16, .bfloat16])
    func halfPrecisionWeightsImportToRounding(dtype: SafetensorsTensor.DType) throws {
        let source = DecisionTransformer(configuration: Self.configuration, batchCapacity: 1, seed: 8, threads: 1)
        let loaded = try load(Self.stateDict(source, dtype: dtype, buffers: 12))
        for (original, imported) in zip(source.parameterValues, loaded.parameterValues) {
            let expected =
                dtype == .float16 ? Float(Float16(original)) : Float(bitPattern: original.bitPattern & 0xFFFF_0000)
            #expect(imported == expected)
            expectClose(imported, original, atol: 1e-7, rtol: dtype == .float16 ? 1e-3 : 8e-3, "\(dtype) rounding")
        }
    }
}
