import Foundation
import Testing

@testable import DecisionFlow

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
