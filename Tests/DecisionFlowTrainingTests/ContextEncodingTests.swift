import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowTraining
import Foundation
import RLData
import TestSupport
import Testing
import TrainingTestSupport

/// Training windows and a policy's history go through one encoder, so an episode replayed
/// through `PolicyHistory` gives the windows the sampler cuts from the same rows.
@Suite struct ContextEncodingTests {
    /// A feature that never changes (std 0) normalizes to 0, not NaN: the reference divides
    /// by std + 1e-6, so the data's own encoding is valid and its windows are finite.
    @Test func aConstantFeatureNormalizesToZero() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("constant.hdf5")
        let writer = try TrajectoryWriter(
            path: path,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: 2, actionDimension: 1, recordsNextObservations: false))
        for t in 0..<6 {
            try writer.append(observation: [Float(t), 3.5], action: [0.1], reward: 1, terminal: t == 5, timeout: false)
        }
        try writer.finish()
        let dataset = try D4RLDataset(file: path)
        let model = ModelConfiguration(
            stateDimension: 2, actionDimension: 1, contextLength: 3, embeddingDimension: 8, layerCount: 1,
            headCount: 1, maxEpisodeLength: 10)
        let encoding = ContextEncoding(dataset: dataset, rewardScale: 1, for: model)
        #expect(encoding.problem(for: model) == nil)
        var sampler = WindowSampler(dataset: dataset, contextLength: 3, encoding: encoding, seed: 2)
        let batch = TrajectoryBatch(capacity: 8, timesteps: 3, stateDimension: 2, actionDimension: 1)
        sampler.fill(batch)
        let constant = stride(from: 1, to: batch.states.count, by: 2).map { batch.states[$0] }
        expectClose(constant, [Float](repeating: 0, count: constant.count), atol: 0, rtol: 0, "the constant feature")
        let varying = stride(from: 0, to: batch.states.count, by: 2).map { batch.states[$0] }
        #expect(varying.allSatisfy(\.isFinite) && varying.contains { $0 != 0 })
    }

    /// With a discount too: acting undoes training's discounted sums step by step, so the
    /// returns-to-go a policy feeds the model are the ones it was trained on.
    @Test(arguments: [ContextEncoding.Padding.right, .left], [1.0, 0.9])
    func aReplayedEpisodeGivesTheSamplersWindows(padding: ContextEncoding.Padding, discount: Double) throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("small.hdf5")
        try TrainingFixtures.writeSmallDataset(path)
        let dataset = try D4RLDataset(file: path)
        let statistics = dataset.stateStatistics()
        let encoding = ContextEncoding(
            stateMean: statistics.mean, stateScale: statistics.normalizationScale, rewardScale: 10, maxTimestep: 5,
            padding: padding, discount: discount)
        let K = 4
        let sampler = WindowSampler(dataset: dataset, contextLength: K, encoding: encoding, seed: 1)
        let episode = dataset.trajectories[0]  // 9 steps: the window grows, then slides past the clamp
        var history = PolicyHistory(contextLength: K, encoding: encoding, actionDimension: 2)
        // The target is the episode's (discounted) return from its first step.
        history.reset(targetReturn: dataset.returnsToGo(discount: discount)[episode.start])
        for row in episode.rows {
            history.append(state: Array(dataset.observations[(row * 3)..<(row * 3 + 3)]).span)
            history.setLastAction { dataset.actions[row * 2 + $0] }
            // The sampler's window ending at this row, against the history's whole window.
            let count = history.count
            let fromSampler = TrajectoryBatch(capacity: 1, timesteps: K, stateDimension: 3, actionDimension: 2)
            sampler.writeWindow(into: fromSampler, sequence: 0, trajectory: 0, startRow: row - count + 1)
            let fromHistory = TrajectoryBatch(capacity: 1, timesteps: count, stateDimension: 3, actionDimension: 2)
            history.write(into: fromHistory, sequence: 0)
            // The sampler's window starts at the same row but runs on to K steps; compare the
            // shared real steps (right padding: its first `count`; left: likewise, no padding
            // is needed because the episode continues past this row, except at the end).
            let shared = min(count, episode.rows.upperBound - (row - count + 1))
            let offset = padding == .left ? K - min(K, episode.rows.upperBound - (row - count + 1)) : 0
            for step in 0..<shared {
                let s = offset + step
                #expect(
                    Array(fromSampler.states[(s * 3)..<(s * 3 + 3)]) == Array(fromHistory.states[(step * 3)..<(step * 3 + 3)]),
                    "row \(row) step \(step) state")
                #expect(
                    Array(fromSampler.actions[(s * 2)..<(s * 2 + 2)])
                        == Array(fromHistory.actions[(step * 2)..<(step * 2 + 2)]))
                #expect(fromSampler.timestepIndices[s] == fromHistory.timestepIndices[step])
                #expect(fromSampler.mask[s] == 1 && fromHistory.mask[step] == 1)
                // Sums from the end against a running difference from the start: equal to rounding.
                expectClose(
                    fromSampler.returnsToGo[s], fromHistory.returnsToGo[step], atol: 1e-5, rtol: 1e-5, "row \(row) rtg")
            }
            history.record(reward: dataset.rewards[row])
        }
    }

    /// The discount travels with the checkpoint, and only when it is not 1: an undiscounted
    /// checkpoint keeps the bytes it had before the discount was recorded, and one without it
    /// reads as undiscounted. A discount of 0 (or beyond 1) is refused: acting divides by it.
    @Test func theDiscountTravelsWithTheCheckpoint() throws {
        let scratch = try ScratchDirectory()
        let model = ModelConfiguration(
            stateDimension: 3, actionDimension: 2, contextLength: 4, embeddingDimension: 8, layerCount: 1, headCount: 1,
            maxEpisodeLength: 10)
        let transformer = DecisionTransformer(configuration: model, batchCapacity: 1, seed: 3)
        for discount in [1.0, 0.9] {
            var encoding = ContextEncoding.identity(for: model, rewardScale: 10)
            encoding.discount = discount
            let path = scratch.path("discount-\(discount).safetensors")
            try Checkpoint(model: transformer, encoding: encoding).write(to: path)
            let back = try Checkpoint.read(path)
            #expect(try back.contextEncoding(source: path) == encoding)
            let policy = try #require(try Safetensors.read(path).metadata["policy"])
            #expect(policy.contains("discount") == (discount != 1), "\(policy)")
            let json = String(decoding: try JSONEncoder().encode(encoding), as: UTF8.self)
            #expect(json.contains("discount") == (discount != 1), "\(json)")
            #expect(try JSONDecoder().decode(ContextEncoding.self, from: Data(json.utf8)) == encoding)
        }
        // A run trained with a discount writes it into its checkpoint, so its policy acts by it.
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        var configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 2)
        configuration.discount = 0.9
        let run = try TrainingRun.start(configuration: configuration, dataset: dataset, directory: scratch.path("run"))
        _ = try run.run()
        let saved = try Checkpoint.read(run.directory.checkpointPath)
        #expect(try saved.contextEncoding(source: run.directory.checkpointPath).discount == 0.9)
        #expect(try DecisionPolicy(checkpointPath: run.directory.checkpointPath).encoding.discount == 0.9)

        var zero = ContextEncoding.identity(for: model)
        zero.discount = 0
        #expect(zero.problem(for: model)?.contains("discount 0.0 is outside (0, 1]") == true)
        for refused in [0, 1e-300, 1.5] {
            var bad = TrainingConfiguration()
            bad.discount = refused
            #expect(bad.problems.contains { $0.contains("discount must be in (0, 1]") }, "discount \(refused)")
        }
        // Falling short of a discounted target grows the return-to-go, but never past finite.
        var history = PolicyHistory(contextLength: 2, encoding: { var e = zero; e.discount = 0.5; return e }(), actionDimension: 2)
        history.reset(targetReturn: 1000)
        for _ in 0..<300 { history.record(reward: 0) }
        history.append(state: [Float](repeating: 0, count: 3).span)
        let window = TrajectoryBatch(capacity: 1, timesteps: 1, stateDimension: 3, actionDimension: 2)
        history.write(into: window, sequence: 0)
        #expect(window.returnsToGo[0].isFinite && window.returnsToGo[0] == 1e30)
    }

    /// A checkpoint written by DecisionFlow 0.1 (before the encoding existed: statistics in
    /// the training state, only mean, scale, reward scale and environment under `policy`)
    /// still loads, with the reference timestep limit and padding side, acts and resumes.
    @Test func aCheckpointFromBeforeTheEncodingStillWorks() throws {
        let path = TrainingFixtures.packageRoot.appendingPathComponent("Tests/Fixtures/checkpoint-0.1.safetensors").path
        let checkpoint = try Checkpoint.read(path)
        let encoding = try checkpoint.contextEncoding(source: path)
        #expect(checkpoint.environment == "hopper")
        #expect(checkpoint.notes.first?.contains("DecisionFlow 0.1") == true, "the reader is told what was not verified")
        #expect(encoding.maxTimestep == checkpoint.configuration.maxEpisodeLength - 1 && encoding.padding == .right)
        // The old training state's statistics give the encoding's values exactly.
        let training = try #require(checkpoint.metadata["training"])
        let legacy = try JSONDecoder().decode(LegacyTrainingState.self, from: Data(training.utf8))
        #expect(encoding.stateMean == legacy.stateStatistics.mean)
        #expect(encoding.stateScale == legacy.stateStatistics.normalizationScale)
        #expect(encoding.rewardScale == legacy.rewardScale)

        let policy = try DecisionPolicy(checkpointPath: path)
        policy.reset(targetReturn: 3600)
        #expect(try policy.action(for: [Float](repeating: 0.1, count: 11)).allSatisfy(\.isFinite))

        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        let saved = try RunCheckpoint(verifying: checkpoint, source: path)
        let trainer = try Trainer(resuming: saved, dataset: dataset, source: path) { $0.steps = 5 }
        #expect(trainer.step == 3 && trainer.encoding == encoding)
        #expect(try trainer.trainStep().loss.isFinite && trainer.step == 4)
        // Written again, it holds the encoding once, under `policy`, and reads back equal.
        let scratch = try ScratchDirectory()
        try trainer.checkpoint().write(to: scratch.path("again.safetensors"))
        let again = try Checkpoint.read(scratch.path("again.safetensors"))
        #expect(again.encoding == encoding && again.environment == "hopper")
        #expect(again.metadata["training"].map { !$0.contains("stateStatistics") } == true)
    }

    @Test func encodingsThatDoNotFitTheModelAreNamed() {
        let model = ModelConfiguration(stateDimension: 3, actionDimension: 2, maxEpisodeLength: 50)
        let good = ContextEncoding.identity(for: model)
        #expect(good.problem(for: model) == nil)
        var wide = good
        wide.stateMean.append(0)
        #expect(wide.problem(for: model)?.contains("states of 3") == true)
        var late = good
        late.maxTimestep = 50
        #expect(late.problem(for: model)?.contains("maxTimestep 50") == true)
        var zero = good
        zero.stateScale[1] = 0
        #expect(zero.problem(for: model)?.contains("feature 1") == true)
        var flat = good
        flat.rewardScale = 0
        #expect(flat.problem(for: model)?.contains("rewardScale") == true)
    }

    /// What DecisionFlow 0.1 kept in a checkpoint's training state.
    struct LegacyTrainingState: Decodable {
        var stateStatistics: StateStatistics
        var rewardScale: Float
    }
}
