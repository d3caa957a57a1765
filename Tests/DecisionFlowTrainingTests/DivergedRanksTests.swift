import DecisionFlowTraining
import Foundation
import ProcessGroups
import RLData
import TestSupport
import Testing
import TrainingTestSupport

/// The check that data-parallel ranks still hold the same parameters, driven by a group whose
/// second rank answers with other parameters (real ranks cannot be made to drift on purpose).
@Suite struct DivergedRanksTests {
    /// Rank 0 of two, whose peer computes the same gradients but reports other parameters.
    final class DriftingPeerGroup: ProcessGroup {
        let rank = 0
        let size = 2
        func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {
            for index in values.indices { values[index] *= 2 }  // the peer's identical half
        }
        func allGather(_ values: [UInt64]) throws -> [UInt64] { values + values.map { $0 ^ 1 } }
        func allGather(_ values: [Double]) throws -> [Double] { values + values }
        func abort(code: Int32) { Issue.record("the group was aborted with status \(code)") }
    }

    @Test func aRankWithOtherParametersStopsTheRunBeforeItsCheckpoint() throws {
        let scratch = try ScratchDirectory()
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        var configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 10)
        configuration.checkpointEvery = 5
        let run = try TrainingRun.start(
            configuration: configuration, dataset: dataset, directory: scratch.path("run"), group: DriftingPeerGroup())
        #expect(run.trainer.batchSlice == 0..<8, "rank 0 computes the first half of 16 windows")
        let error = #expect(throws: TrainingError.self) { try run.run() }
        guard case .ranksDiverged(let step, let rank, _)? = error else {
            Issue.record("expected ranksDiverged, got \(String(describing: error))")
            return
        }
        #expect(step == 5 && rank == 1)
        #expect(error?.description.contains("rank 1's parameters differ from rank 0's") == true)
        #expect(!FileManager.default.fileExists(atPath: run.directory.checkpointPath), "nothing written from diverged ranks")
    }
}
