import DecisionFlow
import DecisionFlowTraining
import Foundation
import RLData
import TestSupport
import Testing
import TrainingTestSupport

/// Run directories under misuse (issue #10, classes 3, 4, 5 and 12): two processes, flags on
/// resume, replaced data, files left by a kill. Each refusal leaves the run as it was.
@Suite(.serialized) struct RunDirectoryTests {
    static func tinyRun(_ directory: String, data: String, steps: Int = 4) throws -> TrainingRun {
        var configuration = TrainingFixtures.smallConfiguration(datasets: [data], steps: steps)
        configuration.contextLength = 3
        configuration.batchSize = 4
        configuration.checkpointEvery = 2
        configuration.logEvery = 2
        return try TrainingRun.start(
            configuration: configuration, dataset: try D4RLDataset(file: data), directory: directory)
    }

    /// The bytes of every file in `directory`, to show nothing changed.
    static func snapshot(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name != ".lock" {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
        }
        return files
    }

    @Test func aSecondTrainerInTheSameDirectoryIsRefusedAtOnce() throws {
        let scratch = try ScratchDirectory()
        let data = scratch.path("small.hdf5")
        try TrainingFixtures.writeSmallDataset(data)
        let directory = scratch.path("run")
        // A run started (its lock held) but not yet trained: a second start is refused.
        let first = try Self.tinyRun(directory, data: data)
        var before = try Self.snapshot(directory)
        do {
            _ = try Self.tinyRun(directory, data: data)
            Issue.record("a second start trained in a directory another run holds")
        } catch let error as TrainingError {
            #expect("\(error)".contains("is in use"), "\(error)")
        }
        #expect(try Self.snapshot(directory) == before)
        // Once it has trained and stopped, the directory is free: a resume may take it, and
        // while that one holds it, another resume is refused.
        try first.run()
        let dataset = try D4RLDataset(file: data)
        let second = try TrainingRun.resume(directory: directory, dataset: dataset, steps: 8)
        before = try Self.snapshot(directory)
        do {
            _ = try TrainingRun.resume(directory: directory, dataset: dataset, steps: 8)
            Issue.record("a second resume trained in a directory another run holds")
        } catch let error as TrainingError {
            #expect("\(error)".contains("is in use"), "\(error)")
        }
        #expect(try Self.snapshot(directory) == before, "nothing in the run changed")
        try second.run()
        #expect(second.trainer.step == 8)
    }

    @Test func resumeAppliesSomeFlagsRecordsThemAndRefusesTheRest() throws {
        let scratch = try ScratchDirectory()
        let data = scratch.path("small.hdf5")
        try TrainingFixtures.writeSmallDataset(data)
        let directory = scratch.path("run")
        try Self.tinyRun(directory, data: data).run()
        let dataset = try D4RLDataset(file: data)
        let before = try Self.snapshot(directory)

        // Fixed fields are refused by flag name, and the run is left alone.
        for (change, flag) in [
            ({ (c: inout TrainingConfiguration) in c.batchSize = 8 }, "--batch-size"),
            ({ (c: inout TrainingConfiguration) in c.embeddingDimension = 64 }, "--embedding-dimension"),
            ({ (c: inout TrainingConfiguration) in c.seed = 9 }, "--seed"),
            ({ (c: inout TrainingConfiguration) in c.steps = 3 }, "--steps"),
        ] {
            do {
                _ = try TrainingRun.resume(directory: directory, dataset: dataset, adjust: change)
                Issue.record("\(flag) was accepted on resume")
            } catch let error as TrainingError {
                #expect("\(error)".contains(flag), "\(error)")
            }
        }
        #expect(try Self.snapshot(directory) == before)

        // A stale temporary checkpoint from a killed write is cleared on the next start.
        let stale = directory + "/checkpoint.safetensors.tmp-4242"
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: stale))
        let resumed = try TrainingRun.resume(directory: directory, dataset: dataset) {
            $0.steps = 6
            $0.learningRate = 5e-4
        }
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(resumed.notes.contains { $0.contains("tmp-4242") })
        #expect(resumed.notes.contains { $0.contains("learningRate 0.001 → 0.0005") }, "\(resumed.notes)")
        try resumed.run()
        let saved = try TrainingConfiguration.read(directory + "/config.json")
        #expect(saved.learningRate == 5e-4 && saved.steps == 6)
        let lines = TrainingRun.readLog(directory + "/log.jsonl")
        #expect(lines.first { $0.step > 4 }?.changes?.contains { $0.contains("learningRate") } == true)
        // Step 6 of a 20-step warmup to the new rate 5e-4: 5e-4 · 6/20 = 1.5e-4.
        expectClose(lines.last?.learningRate, 1.5e-4, atol: 0, rtol: 1e-6, "the new rate is what trained")
    }

    @Test func resumeRefusesDataThatChanged() throws {
        let scratch = try ScratchDirectory()
        let data = scratch.path("small.hdf5")
        try TrainingFixtures.writeSmallDataset(data)
        let directory = scratch.path("run")
        try Self.tinyRun(directory, data: data).run()
        // The same file name, other contents: one reward differs.
        let original = try D4RLDataset(file: data)
        try FileManager.default.removeItem(atPath: data)
        let writer = try TrajectoryWriter(
            path: data,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: 3, actionDimension: 2, recordsNextObservations: false))
        for row in 0..<original.count {
            try writer.append(
                observation: Array(original.observations[(row * 3)..<(row * 3 + 3)]),
                action: Array(original.actions[(row * 2)..<(row * 2 + 2)]),
                reward: original.rewards[row] + (row == 5 ? 1 : 0), terminal: original.terminals[row],
                timeout: original.timeouts[row])
        }
        try writer.finish()
        let before = try Self.snapshot(directory)
        do {
            _ = try TrainingRun.resume(directory: directory, dataset: try D4RLDataset(file: data), steps: 8)
            Issue.record("resumed on other data")
        } catch let error as TrainingError {
            #expect("\(error)".contains("fingerprint"), "\(error)")
        }
        #expect(try Self.snapshot(directory) == before)
    }

    /// Periodic evaluation needs an environment with D4RL scores. Data without one is refused
    /// where the data is known: before a new run writes any file, and before a change given
    /// on resume reaches the checkpoint (which every later resume would then trip over).
    @Test func evaluationWithoutAScoredEnvironmentIsRefusedBeforeAnythingIsWritten() throws {
        let scratch = try ScratchDirectory()
        let data = scratch.path("small.hdf5")
        try TrainingFixtures.writeSmallDataset(data)  // no environment in its metadata
        var configuration = TrainingFixtures.smallConfiguration(datasets: [data], steps: 4)
        configuration.contextLength = 3
        configuration.batchSize = 4
        configuration.evaluateEvery = 2
        let fresh = scratch.path("fresh")
        #expect {
            _ = try TrainingRun.start(configuration: configuration, directory: fresh, source: "preset.json")
        } throws: { error in
            "\(error)".contains("preset.json") && "\(error)".contains("evaluateEvery 2 needs an environment")
        }
        #expect(!FileManager.default.fileExists(atPath: fresh))

        let directory = scratch.path("run")
        _ = try Self.tinyRun(directory, data: data).run()
        let before = try Self.snapshot(directory)
        #expect {
            _ = try TrainingRun.resume(directory: directory) {
                $0.steps = 8
                $0.evaluateEvery = 2
            }
        } throws: { error in
            "\(error)".contains("--resume") && "\(error)".contains("needs an environment")
        }
        #expect(try Self.snapshot(directory) == before)
    }
}
