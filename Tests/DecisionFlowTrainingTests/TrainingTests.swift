import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowTraining
import Foundation
import RLData
import TestSupport
import TrainingTestSupport
import Testing


@Suite struct WindowSamplerTests {
    /// Windows against values computed here from the file's raw arrays (read through the HDF5
    /// layer, not through D4RLDataset): normalization, returns-to-go, timestep clamping,
    /// padding and mask, for a trajectory shorter than K and one at the end of the file.
    @Test(arguments: [ContextEncoding.Padding.right, .left])
    func windowsMatchAnIndependentComputation(padding: ContextEncoding.Padding) throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("small.hdf5")
        try TrainingFixtures.writeSmallDataset(path)
        let file = try HDF5File.open(path)
        let observations = try file.dataset("observations").readArray(as: Double.self)
        let actions = try file.dataset("actions").readArray(as: Double.self)
        let rewards = try file.dataset("rewards").readArray(as: Double.self)
        let N = rewards.count
        // Independent statistics: population mean and std per feature, + 1e-6.
        let mean = (0..<3).map { j in
            stride(from: j, to: 3 * N, by: 3).map { observations[$0] }.reduce(0, +) / Double(N)
        }
        let std = (0..<3).map { j in
            (stride(from: j, to: 3 * N, by: 3).map { (observations[$0] - mean[j]) * (observations[$0] - mean[j]) }
                .reduce(0, +) / Double(N)).squareRoot() + 1e-6
        }
        let episodes = [0..<9, 9..<12, 12..<19, 19..<21]

        let dataset = try D4RLDataset(file: path)
        let K = 5
        let scale: Float = 10
        let statistics = dataset.stateStatistics()
        let encoding = ContextEncoding(
            stateMean: statistics.mean, stateScale: statistics.normalizationScale, rewardScale: scale, maxTimestep: 5,
            padding: padding)
        let sampler = WindowSampler(dataset: dataset, contextLength: K, encoding: encoding, seed: 1)
        let batch = TrajectoryBatch(capacity: 4, timesteps: K, stateDimension: 3, actionDimension: 2)
        // (trajectory, start): a full window that crosses the timestep clamp, the short
        // 3-step episode, the tail of the 7-step one, and the unfinished episode at the end.
        let cases = [(0, 3), (1, 9), (2, 16), (3, 19)]
        for (sequence, (trajectory, start)) in cases.enumerated() {
            sampler.writeWindow(into: batch, sequence: sequence, trajectory: trajectory, startRow: start)
        }
        for (sequence, (trajectory, start)) in cases.enumerated() {
            let episode = episodes[trajectory]
            let real = min(K, episode.upperBound - start)
            let offset = padding == .right ? 0 : K - real
            for slot in 0..<K {
                let index = sequence * K + slot
                let step = slot - offset
                if step < 0 || step >= real {
                    #expect(batch.mask[index] == 0)
                    #expect(batch.states[(index * 3)..<(index * 3 + 3)].allSatisfy { $0 == 0 })
                    #expect(batch.actions[(index * 2)..<(index * 2 + 2)].allSatisfy { $0 == -10 })
                    #expect(batch.returnsToGo[index] == 0 && batch.timestepIndices[index] == 0)
                    continue
                }
                let row = start + step
                #expect(batch.mask[index] == 1)
                expectClose(
                    batch.states[(index * 3)..<(index * 3 + 3)],
                    (0..<3).map { j in (observations[row * 3 + j] - mean[j]) / std[j] }, atol: 1e-4, rtol: 0,
                    "state \(sequence) \(slot)")
                #expect(
                    batch.actions[index * 2] == Float(actions[row * 2])
                        && batch.actions[index * 2 + 1] == Float(actions[row * 2 + 1]))
                let toGo = rewards[row..<episode.upperBound].reduce(0, +) / Double(scale)
                expectClose(batch.returnsToGo[index], toGo, atol: 1e-5, rtol: 0, "rtg \(sequence) \(slot)")
                #expect(
                    batch.timestepIndices[index] == Int32(min(row - episode.lowerBound, 5)),
                    "timestep \(sequence) \(slot)")
            }
        }
    }

    @Test(arguments: WindowSampling.allCases)
    func seededSamplingIsReproducibleAndCoversEveryStart(sampling: WindowSampling) throws {
        let scratch = try ScratchDirectory()
        try TrainingFixtures.writeSmallDataset(scratch.path("small.hdf5"))
        let dataset = try D4RLDataset(file: scratch.path("small.hdf5"))
        func draw(_ seed: UInt64) -> [Float] {
            let encoding = ContextEncoding(
                stateMean: [0, 0, 0], stateScale: [1, 1, 1], rewardScale: 1, maxTimestep: 99, padding: .right)
            var sampler = WindowSampler(
                dataset: dataset, contextLength: 4, encoding: encoding, sampling: sampling, seed: seed)
            let batch = TrajectoryBatch(capacity: 400, timesteps: 4, stateDimension: 3, actionDimension: 2)
            sampler.fill(batch)
            return (0..<400).map { batch.states[$0 * 4 * 3] }  // first state of each window
        }
        #expect(draw(3) == draw(3))
        #expect(draw(3) != draw(4))
        // 400 draws over 21 equally likely starts reach every one.
        #expect(Set(draw(5)).count == 21)
    }
}

@Suite(.serialized) struct TrainingTests {
    @Test func threeHundredStepsLowerTheLoss() throws {
        let scratch = try ScratchDirectory()
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        let configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 300)
        let run = try TrainingRun.start(configuration: configuration, dataset: dataset, directory: scratch.path("run"))
        let records = try run.run()
        #expect(records.count == 300)
        let first = records.prefix(50).map(\.loss).reduce(0, +) / 50
        let last = records.suffix(50).map(\.loss).reduce(0, +) / 50
        #expect(last <= 0.6 * first, "mean loss of the first 50 steps \(first), of the last 50 \(last)")
        let log = TrainingRun.readLog(run.directory.logPath)
        #expect(log.map(\.step) == [25, 50, 75, 100, 125, 150, 175, 200, 225, 250, 275, 300])
        #expect(FileManager.default.fileExists(atPath: run.directory.checkpointPath))
    }

    /// A run stopped at step 150 and resumed to 300 gives the same losses, bit for bit, as one
    /// that ran straight to 300.
    @Test func resumedRunRepeatsAnUninterruptedOne() throws {
        let scratch = try ScratchDirectory()
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        let configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 300)
        let straight = try TrainingRun.start(
            configuration: configuration, dataset: dataset, directory: scratch.path("straight")
        ).run()

        var half = configuration
        half.steps = 150
        let first = try TrainingRun.start(configuration: half, dataset: dataset, directory: scratch.path("split")).run()
        let resumed = try TrainingRun.resume(directory: scratch.path("split"), dataset: dataset, steps: 300)
        #expect(resumed.trainer.step == 150)
        let second = try resumed.run()
        let combined = first + second
        #expect(combined.map(\.step) == Array(1...300))
        #expect(combined.map(\.loss.bitPattern) == straight.map(\.loss.bitPattern))
        #expect(combined.map(\.gradientNorm.bitPattern) == straight.map(\.gradientNorm.bitPattern))
        // The resumed run's log continues where the first left off.
        #expect(TrainingRun.readLog(resumed.directory.logPath).map(\.step).last == 300)
    }

    @Test func aNaNStopsTheRunAndKeepsTheLastCheckpoint() throws {
        let scratch = try ScratchDirectory()
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        var configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 100)
        let run = try TrainingRun.start(configuration: configuration, dataset: dataset, directory: scratch.path("run"))
        try run.run()

        // Train further with a poisoned weight: the next loss is NaN.
        configuration.steps = 200
        let resumed = try TrainingRun.resume(directory: scratch.path("run"), dataset: dataset, steps: 200)
        // The last good checkpoint (rewritten by the resume, which records the new step count).
        let good = try Data(contentsOf: URL(fileURLWithPath: run.directory.checkpointPath))
        let poisoned = try #require(resumed.trainer.model.layout.entry(named: "embed_state.weight")).offset
        resumed.trainer.model.withParameters { $0[poisoned] = .nan }
        do {
            try resumed.run()
            Issue.record("training went on through a NaN")
        } catch let error as TrainingError {
            guard case .nonFinite(let step, _, let checkpoint) = error else {
                Issue.record("wrong error: \(error)")
                return
            }
            #expect(step == 101)
            #expect(checkpoint == run.directory.checkpointPath)
            #expect(error.description.contains("intact"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: run.directory.checkpointPath)) == good)
        #expect(try Checkpoint.read(run.directory.checkpointPath).parameters.allSatisfy(\.isFinite))
    }

    @Test func startingOverAnExistingRunIsRefused() throws {
        let scratch = try ScratchDirectory()
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        let configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 2)
        try TrainingRun.start(configuration: configuration, dataset: dataset, directory: scratch.path("run")).run()
        #expect(throws: TrainingError.self) {
            try TrainingRun.start(configuration: configuration, dataset: dataset, directory: scratch.path("run"))
        }
    }
}

@Suite struct ConfigurationTests {
    func error(_ json: String) -> String? {
        do {
            _ = try TrainingConfiguration.decode(Data(json.utf8), source: "test.json")
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func missingFieldsTakeDefaultsAndPresentOnesApply() throws {
        let configuration = try TrainingConfiguration.decode(
            Data(#"{"datasets": ["a.hdf5"], "embeddingDimension": 256, "headCount": 4, "learningRate": 0.001}"#.utf8),
            source: "x")
        // Every field the JSON leaves out is the default instance's; the four it gives apply.
        var expected = TrainingConfiguration()
        expected.datasets = ["a.hdf5"]
        expected.embeddingDimension = 256
        expected.headCount = 4
        expected.learningRate = 1e-3
        #expect(configuration == expected)
        #expect(configuration.problems.isEmpty)
    }

    @Test func unknownFieldIsAnErrorWithASuggestion() {
        let message = error(#"{"datasets": ["a"], "learningrate": 0.001}"#)
        #expect(message?.contains("unknown field 'learningrate'") == true)
        #expect(message?.contains("did you mean 'learningRate'") == true)
    }

    @Test func wrongTypeNamesTheField() {
        #expect(error(#"{"batchSize": "64"}"#)?.contains("field 'batchSize' should be a whole number") == true)
        #expect(error(#"{"attention": "linear"}"#)?.contains("attention") == true)
        #expect(error("[1, 2]")?.contains("JSON object") == true)
        #expect(error("{not json")?.contains("not valid JSON") == true)
    }

    @Test func invalidValuesAreReported() throws {
        var configuration = TrainingConfiguration()
        configuration.datasets = ["a"]
        configuration.headCount = 3
        configuration.learningRate = -1
        let problems = configuration.problems
        let width = configuration.embeddingDimension
        #expect(problems.contains { $0.contains("headCount 3 must divide embeddingDimension \(width)") }, "\(problems)")
        #expect(problems.contains { $0.contains("learningRate") })
    }

    @Test func dimensionsThatDisagreeWithTheEnvironmentFailBeforeTraining() throws {
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)  // hopper: 11 / 3
        var configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 1)
        configuration.environment = "halfcheetah"
        do {
            _ = try Trainer(configuration: configuration, dataset: dataset)
            Issue.record("trained halfcheetah on hopper data")
        } catch let error as TrainingError {
            #expect("\(error)".contains("halfcheetah") && "\(error)".contains("17"), "\(error)")
        }
    }
}
