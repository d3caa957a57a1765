import Foundation
import DecisionFlowSupport
import TestSupport
import Testing

@testable import DecisionFlow
@testable import DecisionFlowCheckpoints


/// A small model and a random batch for it.
func smallModelAndBatch(attention: AttentionKind = .flow, seed: UInt64 = 3, threads: Int = 2) -> (
    DecisionTransformer, TrajectoryBatch
) {
    let configuration = ModelConfiguration(
        stateDimension: 5, actionDimension: 2, contextLength: 4, embeddingDimension: 16, layerCount: 2, headCount: 2,
        maxEpisodeLength: 50, attention: attention)
    let model = DecisionTransformer(configuration: configuration, batchCapacity: 3, seed: seed, threads: threads)
    let batch = TrajectoryBatch(capacity: 3, timesteps: 4, stateDimension: 5, actionDimension: 2)
    batch.states = testValues(batch.states.count, seed: 11)
    batch.actions = testValues(batch.actions.count, seed: 12, scale: 0.9)
    batch.returnsToGo = testValues(batch.returnsToGo.count, seed: 13)
    batch.timestepIndices = (0..<batch.timestepIndices.count).map { Int32($0 % 4 + 7) }
    batch.mask = [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0]
    return (model, batch)
}

@Suite struct CheckpointTests {
    @Test func roundTripKeepsWeightsOptimizerAndMetadata() throws {
        let scratch = try ScratchDirectory()
        let (model, batch) = smallModelAndBatch()
        var optimizer = AdamW(layout: model.layout)
        for _ in 0..<2 {
            model.forward(batch, training: true)
            model.backward(batch)
            optimizer.update(model, learningRate: 1e-3)
        }
        let path = scratch.path("model.safetensors")
        try Checkpoint(model: model, optimizer: optimizer, metadata: ["run": "test", "step": "2"]).write(to: path)

        let checkpoint = try Checkpoint.read(path)
        #expect(checkpoint.configuration == model.configuration)
        #expect(checkpoint.parameters == Array(model.parameters))
        #expect(checkpoint.optimizer?.step == 2)
        #expect(checkpoint.optimizer?.firstMoment == optimizer.firstMoment)
        #expect(checkpoint.optimizer?.secondMoment == optimizer.secondMoment)
        #expect(checkpoint.optimizer?.settings == optimizer.settings)
        #expect(checkpoint.metadata == ["run": "test", "step": "2"])
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp-\(getpid())"))

        let restored = DecisionTransformer(checkpoint: checkpoint, batchCapacity: 3)
        let expectedLoss = model.forward(batch)
        let expected = Array(model.actionPredictionBuffer)
        #expect(restored.forward(batch) == expectedLoss)
        #expect(Array(restored.actionPredictionBuffer) == expected)
    }

    /// The weights are a PyTorch state dict under the reference's names: the fixture's
    /// `param/` tensors load, save and reload, and still reproduce the reference outputs.
    @Test func referenceWeightsSurviveACheckpoint() throws {
        let scratch = try ScratchDirectory()
        let contents = try ReferenceFixtures.load("dt_flow_small")
        let (model, batch) = try ReferenceFixtures.modelAndBatch(contents, name: "dt_flow_small")
        let path = scratch.path("reference.safetensors")
        try Checkpoint(model: model).write(to: path)
        let saved = try Safetensors.read(path)
        for (name, tensor) in contents.tensors where name.hasPrefix("param/") {
            #expect(
                saved.tensors[String(name.dropFirst("param/".count))]
                    == SafetensorsTensor(shape: tensor.shape, values: tensor.values))
        }
        let restored = DecisionTransformer(checkpoint: try Checkpoint.read(path), batchCapacity: 3)
        restored.forward(batch)
        expectClose(
            Array(restored.actionPredictionBuffer), try #require(contents.tensors["output/action_preds"]).values, atol: 1e-5,
            rtol: 1e-4, "action_preds")
    }

    @Test func corruptionIsDetected() throws {
        let scratch = try ScratchDirectory()
        let (model, _) = smallModelAndBatch()
        let path = scratch.path("model.safetensors")
        try Checkpoint(model: model).write(to: path)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))

        var flipped = data
        flipped[flipped.count - 10] ^= 0x40  // one bit in the last tensor
        try flipped.write(to: URL(fileURLWithPath: scratch.path("flipped.safetensors")))
        #expect(throws: CheckpointError.self) { try Checkpoint.read(scratch.path("flipped.safetensors")) }
        do {
            _ = try Checkpoint.read(scratch.path("flipped.safetensors"))
        } catch let error as CheckpointError {
            #expect(error.problem.contains("checksum"))
            #expect(error.description.contains("flipped.safetensors"))
        }

        data.removeLast(data.count / 3)
        try data.write(to: URL(fileURLWithPath: scratch.path("truncated.safetensors")))
        do {
            _ = try Checkpoint.read(scratch.path("truncated.safetensors"))
            Issue.record("read a truncated checkpoint")
        } catch let error as CheckpointError {
            #expect(error.problem.contains("truncated"), "\(error)")
        }

        try Data("not a checkpoint at all".utf8).write(to: URL(fileURLWithPath: scratch.path("text.safetensors")))
        #expect(throws: CheckpointError.self) { try Checkpoint.read(scratch.path("text.safetensors")) }
        #expect(throws: CheckpointError.self) { try Checkpoint.read(scratch.path("missing.safetensors")) }
        // A reference fixture is safetensors, but not a DecisionFlow checkpoint.
        do {
            _ = try Checkpoint.read(
                ReferenceFixtures.directory.appendingPathComponent("dt_flow_small.safetensors").path)
            Issue.record("read a fixture as a checkpoint")
        } catch let error as CheckpointError {
            #expect(error.problem.contains("d4rl-run import"))
        }
    }

    @Test func loadingIntoADifferentConfigurationFails() throws {
        let scratch = try ScratchDirectory()
        let (model, _) = smallModelAndBatch()
        let path = scratch.path("model.safetensors")
        try Checkpoint(model: model).write(to: path)
        var other = model.configuration
        other.embeddingDimension = 32
        let wider = DecisionTransformer(configuration: other, batchCapacity: 1, seed: 0)
        do {
            try wider.load(try Checkpoint.read(path), source: path)
            Issue.record("loaded a checkpoint into a different model")
        } catch let error as CheckpointError {
            #expect(error.problem.contains("C 16") && error.problem.contains("C 32"), "\(error)")
        }
        // State dicts are checked tensor by tensor, too.
        let contents = try Safetensors.read(path)
        #expect(throws: CheckpointError.self) { try wider.load(stateDictionary: contents.tensors, source: path) }
    }

    @Test func aFailedWriteLeavesTheGoodCheckpoint() throws {
        let scratch = try ScratchDirectory()
        let (model, _) = smallModelAndBatch()
        let path = scratch.path("model.safetensors")
        try Checkpoint(model: model).write(to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        // A directory where the temporary file should go makes the write fail before rename.
        try FileManager.default.createDirectory(atPath: path + ".tmp-\(getpid())", withIntermediateDirectories: false)
        model.parameters[0] += 1
        #expect(throws: FileWriteError.self) { try Checkpoint(model: model).write(to: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == good)
        #expect(throws: FileWriteError.self) {
            try Checkpoint(model: model).write(to: scratch.path("no/such/dir/model.safetensors"))
        }
    }
}
