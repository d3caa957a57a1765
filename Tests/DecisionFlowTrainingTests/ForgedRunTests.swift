import DecisionFlowTraining
import Foundation
import RLData
import Testing

import DecisionFlowSupport
import TestSupport
import TrainingTestSupport
@testable import DecisionFlow
@testable import DecisionFlowCheckpoints

/// A run's checkpoint and its `config.json` forged to disagree, with the checksum recomputed
/// as anyone can: each forgery is refused, naming what disagrees, and the run is left as it
/// was. The checkpoint's training state is the run's record; `config.json` a copy of it.
@Suite(.serialized) struct ForgedRunTests {
    typealias RawTensor = (name: String, dtype: SafetensorsTensor.DType, shape: [Int], bytes: [UInt8])

    /// Rewrites the checkpoint at `path` after `edit`, with a valid checksum.
    static func reseal(_ path: String, edit: (inout [String: String], inout [RawTensor]) throws -> Void) throws {
        let contents = try Safetensors.read(path)
        var metadata = contents.metadata
        // In file order, as the checksum reads the data section.
        var tensors: [RawTensor] = contents.tensors.sorted { $0.value.bytes.startIndex < $1.value.bytes.startIndex }
            .map { ($0.key, $0.value.dtype, $0.value.shape, [UInt8]($0.value.bytes)) }
        try edit(&metadata, &tensors)
        metadata["checksum"] = nil
        let unsealed = try Safetensors.parse(try Safetensors.serialize(raw: tensors, metadata: metadata), file: path)
        var checksum = FNV1a64()
        checksum.add(metadata: metadata)
        unsealed.body.withUnsafeBytes { checksum.add($0) }
        metadata["checksum"] = checksum.hex
        try Safetensors.serialize(raw: tensors, metadata: metadata).write(to: URL(fileURLWithPath: path))
    }

    /// Edits the training state's configuration inside the checkpoint at `path`.
    static func forgeTrainingState(_ path: String, _ change: (inout TrainingConfiguration) -> Void) throws {
        try reseal(path) { metadata, _ in
            var state = try JSONDecoder().decode(TrainingState.self, from: Data(try #require(metadata["training"]).utf8))
            change(&state.configuration)
            metadata["training"] = String(decoding: try JSONEncoder.sorted.encode(state), as: UTF8.self)
        }
    }

    /// A finished 4-step run in `scratch`.
    static func finishedRun(in scratch: ScratchDirectory) throws -> RunDirectory {
        let run = try RunDirectoryTests.tinyRun(scratch.path("run"), data: TrainingFixtures.bundledDataset)
        try run.run()
        return run.directory
    }

    /// What resuming the run says, or nil if it resumed.
    static func refusal(_ directory: RunDirectory) -> String? {
        do {
            _ = try TrainingRun.resume(
                directory: directory.path, dataset: try D4RLDataset(file: TrainingFixtures.bundledDataset), steps: 6)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aTrainingStateThatDisagreesWithConfigJSONIsRefusedNamingTheField() throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        try Self.forgeTrainingState(directory.checkpointPath) { $0.batchSize = 16 }
        let before = try Data(contentsOf: URL(fileURLWithPath: directory.checkpointPath))
        let message = try #require(Self.refusal(directory), "a forged batch size was resumed")
        #expect(message.contains("config.json") && message.contains("batchSize is 4 there but 16 in the checkpoint"), "\(message)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.checkpointPath)) == before, "nothing rewritten")
    }

    @Test func aTrainingStateNamingAnotherDatasetIsRefused() throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        try Self.forgeTrainingState(directory.checkpointPath) { $0.datasets = ["elsewhere/walker2d-medium.hdf5"] }
        let message = try #require(Self.refusal(directory), "another dataset in the training state was resumed")
        #expect(message.contains("datasets is") && message.contains("elsewhere/walker2d-medium.hdf5"), "\(message)")
    }

    /// The weights are described twice (the header's model configuration and the training
    /// state's configuration): a training state for another model is refused on reading.
    @Test func aTrainingStateForAnotherModelIsRefusedOnReading() throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        try Self.forgeTrainingState(directory.checkpointPath) { $0.layerCount = 3 }
        #expect(throws: CheckpointError.self) { try RunCheckpoint.read(directory.checkpointPath) }
        let message = try #require(Self.refusal(directory))
        #expect(message.contains("describes another model (layerCount 2 against 3)"), "\(message)")
    }

    /// The values stored twice besides the model's shape (weight decay in the optimizer, the
    /// reward scale in the context encoding) must agree with the training state's.
    @Test(arguments: ["weightDecay", "rewardScale"])
    func aTrainingStateThatDisagreesWithItsOptimizerOrEncodingIsRefused(field: String) throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        try Self.forgeTrainingState(directory.checkpointPath) {
            if field == "weightDecay" { $0.weightDecay = 0.01 } else { $0.rewardScale = 1 }
        }
        do {
            _ = try RunCheckpoint.read(directory.checkpointPath)
            Issue.record("a training state whose \(field) disagrees was read")
        } catch let error as CheckpointError {
            #expect(error.problem.contains("\(field) is") && error.problem.contains("in the training state but"), "\(error)")
        }
    }

    /// A value JSON cannot hold, given with --resume, is named as such (it once made every
    /// field look changed).
    @Test func aNonFiniteFlagOnResumeIsNamed() throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        do {
            _ = try TrainingRun.resume(
                directory: directory.path, dataset: try D4RLDataset(file: TrainingFixtures.bundledDataset)
            ) {
                $0.steps = 6
                $0.learningRate = .nan
            }
            Issue.record("a NaN learning rate was accepted")
        } catch let error as TrainingError {
            #expect("\(error)".contains("learningRate must be a positive finite number (it is nan)"), "\(error)")
        }
    }

    /// A tensor stored as I32 (same byte count, valid checksum) is not read as float32.
    @Test func aTensorOfAnotherTypeIsRefusedNamingIt() throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        try Self.reseal(directory.checkpointPath) { _, tensors in
            let index = try #require(tensors.firstIndex { $0.name == "embed_return.weight" })
            tensors[index].dtype = .int32
        }
        do {
            _ = try Checkpoint.read(directory.checkpointPath)
            Issue.record("an I32 tensor was read as float32")
        } catch let error as CheckpointError {
            #expect(error.problem.contains("'embed_return.weight' is stored as I32"), "\(error)")
        }
        #expect(Self.refusal(directory)?.contains("I32") == true)
    }

    /// config.json is only a copy: without it, resume trains on and writes it again, equal to
    /// the one the run started with but for what the resume changed.
    @Test func aMissingConfigJSONIsWrittenAgainFromTheCheckpoint() throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        let original = try Data(contentsOf: URL(fileURLWithPath: directory.configurationPath))
        try FileManager.default.removeItem(atPath: directory.configurationPath)
        let run = try TrainingRun.resume(
            directory: directory.path, dataset: try D4RLDataset(file: TrainingFixtures.bundledDataset), steps: 6)
        #expect(run.trainer.step == 4)
        var expected = try JSONDecoder().decode(TrainingConfiguration.self, from: original)
        expected.steps = 6
        #expect(try TrainingConfiguration.read(directory.configurationPath) == expected)
    }

    /// A config.json that differs only in a field a resume may change (a resume stopped
    /// before its change reached it, or an edit) is no error: the checkpoint wins, config.json
    /// is written again from it, and a note says so.
    @Test func aStaleResumableFieldInConfigJSONIsRewrittenWithANote() throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        var edited = try TrainingConfiguration.read(directory.configurationPath)
        edited.steps = 9
        try JSONEncoder.prettySorted.encode(edited).write(to: URL(fileURLWithPath: directory.configurationPath))
        let run = try TrainingRun.resume(
            directory: directory.path, dataset: try D4RLDataset(file: TrainingFixtures.bundledDataset), steps: 6)
        #expect(run.notes.contains { $0.contains("config.json said steps 9") && $0.contains("records steps 4") }, "\(run.notes)")
        #expect(try TrainingConfiguration.read(directory.configurationPath).steps == 6)
    }

    /// A change made on resume goes into the checkpoint at once, so the run's record and its
    /// config.json agree even if the process is killed before its next checkpoint.
    @Test func aChangeOnResumeIsRecordedInTheCheckpointAtOnce() throws {
        let scratch = try ScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let directory = try Self.finishedRun(in: scratch)
        _ = try TrainingRun.resume(
            directory: directory.path, dataset: try D4RLDataset(file: TrainingFixtures.bundledDataset), steps: 8)
        // Not trained further: as if killed right after resuming.
        let saved = try TrainingRun.savedCheckpoint(in: directory.path)
        #expect(saved.configuration.steps == 8 && saved.state.step == 4)
        #expect(try TrainingConfiguration.read(directory.configurationPath) == saved.configuration)
    }
}
