import Foundation
import RLData
import Testing
import TestSupport

/// The loader against the fifteen D4RL-schema files that h5py wrote from real MuJoCo rollouts.
@Suite struct SharedDatasetTests {
    @Test(arguments: TestFiles.sharedDatasetNames)
    func reportMatchesGeneratorMetadata(name: String) throws {
        let report = try D4RLFileReport(file: TestFiles.sharedDataset(name))
        guard case .integer(let episodes)? = report.metadata["episodes"],
            let mean = report.metadata["return_mean"]?.number,
            let low = report.metadata["return_min"]?.number,
            let high = report.metadata["return_max"]?.number
        else {
            Issue.record("\(name): metadata/episodes or return_* missing: \(report.metadata)")
            return
        }
        #expect(report.episodes.total == Int(episodes), "\(name)")
        // Relative agreement with the generator's own statistics (it rounds to two decimals).
        expectClose(report.returns.mean, mean, atol: 1e-12, rtol: 1e-3, "\(name): return mean")
        expectClose(report.returns.min, low, atol: 1e-12, rtol: 1e-3, "\(name): return min")
        expectClose(report.returns.max, high, atol: 1e-12, rtol: 1e-3, "\(name): return max")
        // Every shared file ends on a flag, so nothing is left unfinished.
        #expect(report.episodes.unfinished == 0)
        // The id the data names, before any catalog: gymnasium's v4 of the file's task.
        #expect(report.environment.flatMap(D4RLReferenceScores.task(ofID:)) == name.split(separator: "-").first.map(String.init))
        #expect(report.environment?.hasSuffix("-v4") == true, "\(report.environment ?? "none")")
        #expect(report.environmentSource == "metadata")
    }

    @Test func floatSixtyFourFileMatchesDirectRead() throws {
        // medium-replay stores float64; the loader reads straight into Float.
        let path = TestFiles.sharedDataset("hopper-medium-replay")
        let dataset = try D4RLDataset(file: path)
        let raw = try HDF5File.open(path).dataset("observations")
        #expect(raw.elementType == .float(bits: 64))
        let doubles = try raw.readRows(100..<110, as: Double.self)
        #expect(Array(dataset.observations[(100 * 11)..<(110 * 11)]) == doubles.map { Float($0) })
        #expect(dataset.observationDimension == 11)
        #expect(dataset.actionDimension == 3)
        #expect(dataset.count == 50_000)
    }

    @Test func mediumExpertEqualsMediumThenExpert() throws {
        let medium = TestFiles.sharedDataset("hopper-medium")
        let expert = TestFiles.sharedDataset("hopper-expert")
        let joined = try D4RLDataset(files: [medium, expert])
        let both = try D4RLDataset(file: TestFiles.sharedDataset("hopper-medium-expert"))
        #expect(joined.count == both.count)
        #expect(joined.observations == both.observations)
        #expect(joined.rewards == both.rewards)
        #expect(joined.trajectories.map(\.length) == both.trajectories.map(\.length))
        #expect(joined.fileRowOffsets == [0, 50_000, 100_000])
        #expect(joined.trajectories.first { $0.fileIndex == 1 }?.start == 50_000)
    }

    @Test func hdf5LayerListsAndReadsAnH5pyFile() throws {
        let file = try HDF5File.open(TestFiles.sharedDataset("walker2d-medium"))
        let entries = try file.entries()
        let datasets = Set(entries.filter { $0.kind == .dataset }.map(\.path))
        #expect(
            datasets.isSuperset(of: [
                "observations", "actions", "rewards", "terminals", "timeouts", "infos/qpos", "infos/qvel",
                "metadata/behavior/env_id",
            ]))
        #expect(entries.contains(HDF5Entry(path: "metadata/behavior", kind: .group)))

        let observations = try file.dataset("observations")
        #expect(observations.shape == [50_000, 17])
        #expect(observations.filters.contains(.shuffle))
        #expect(observations.filters.contains { if case .deflate = $0 { return true } else { return false } })
        #expect(observations.chunkShape != nil)

        // A hyperslab read is the same as the matching part of a full read.
        let all = try observations.readArray(as: Float.self)
        let middle = try observations.readRows(12_345..<12_400, as: Float.self)
        #expect(middle == Array(all[(12_345 * 17)..<(12_400 * 17)]))

        #expect(try file.dataset("terminals").elementType == .boolean)
        #expect(try file.dataset("metadata/behavior/env_id").readString() == "Walker2d-v4")
        #expect(try file.dataset("metadata/max_episode_steps").readScalar(as: Int.self) == 1000)
        let qpos = try file.dataset("infos/qpos")
        #expect(qpos.shape == [50_000, 9])
    }
}
