import DecisionFlowExperiments
import DecisionFlowTraining
import Foundation
import TestSupport
import Testing
import TrainingTestSupport

/// The sweep presets in configs/sweeps plan into the tables they describe.
@Suite struct SweepPresetTests {
    /// Plans `name` where it lies: its preset paths are relative to its own folder.
    static func plan(_ name: String) throws -> Sweep {
        let scratch = try ScratchDirectory()
        let source = TrainingFixtures.packageRoot.appendingPathComponent("configs/sweeps/\(name)").path
        let sweep = try Sweep.plan(specification: source, into: scratch.path("sweep"))
        _ = scratch  // kept alive until the plan is read
        return sweep
    }

    @Test func theSharedTableIsNineDatasetsTwoModelsThreeSeeds() throws {
        let sweep = try Self.plan("shared-table.json")
        #expect(sweep.runs.count == 9 * 2 * 3 && sweep.episodes == 10)
        #expect(sweep.runs.first?.name == "hopper-medium_attention-flow_seed-1")
    }

    @Test func theD4RLTableUsesThePublishedPresets() throws {
        let sweep = try Self.plan("d4rl-table.json")
        #expect(sweep.runs.count == 18 * 3 && sweep.episodes == 100)
        #expect(sweep.runs.contains { $0.name == "walker2d-medium-replay-flowformer_seed-3" })
    }
}

/// `Sweep.plan` refuses what would make a table lie or a plan never end, before writing
/// anything, and reads a specification's relative paths against its own folder.
@Suite struct SweepPlanTests {
    /// Writes `text` as a specification in a folder of its own and plans it into `sweep`
    /// beside it; returns the error, if any.
    static func plan(_ text: String, in scratch: ScratchDirectory, into directory: String = "sweep") -> (Sweep?, String?) {
        let folder = scratch.path("specs")
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/spec.json"
        try? Data(text.utf8).write(to: URL(fileURLWithPath: path))
        do {
            return (try Sweep.plan(specification: path, into: scratch.path(directory)), nil)
        } catch {
            return (nil, "\(error)")
        }
    }

    @Test func malformedDuplicatedOrHugeSpecificationsAreRefused() throws {
        let cases: [(String, String)] = [
            (#"{"grid": {"seed": [1, 2]}, "episodes": true}"#, "episodes must be a whole number"),
            (#"{"grid": {"seed": [1, 2]}, "name": 5}"#, "name must be a non-empty string"),
            (#"{"base": {"datasets": ["d.hdf5"]}, "grid": {"seed": [1, 1]}}"#, "are the same configuration"),
            (#"{"base": {"datasets": ["d.hdf5"]}, "grid": {"learningRate": [0.0001, 1e-4]}}"#, "are the same configuration"),
            (#"{"base": {"datasets": ["d.hdf5"]}, "grid": {}}"#, "the grid is empty"),
            (#"{"grid": {"seed": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "learningRate": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "batchSize": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "steps": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}}"#, "more than a sweep holds (10000)"),
        ]
        for (text, message) in cases {
            let scratch = try ScratchDirectory()
            let (sweep, error) = Self.plan(text, in: scratch)
            #expect(sweep == nil && error?.contains(message) == true, "\(text): \(error ?? "planned")")
            #expect(!FileManager.default.fileExists(atPath: scratch.path("sweep")), "nothing written for \(text)")
        }
    }

    /// A directory left with another plan's runs (its sweep.json removed) is not planned over.
    @Test func runsOfAnotherPlanAreNotAdopted() throws {
        let scratch = try ScratchDirectory()
        let text = #"{"base": {"datasets": ["DATA"]}, "grid": {"seed": [1, 2]}}"#
            .replacingOccurrences(of: "DATA", with: TrainingFixtures.bundledDataset)
        let (first, _) = Self.plan(text, in: scratch)
        let sweep = try #require(first)
        let evaluation = sweep.directory(of: sweep.runs[0]).evaluationPath
        try Data("{}".utf8).write(to: URL(fileURLWithPath: evaluation))
        try FileManager.default.removeItem(atPath: scratch.path("sweep/sweep.json"))
        let (again, error) = Self.plan(text, in: scratch)
        #expect(again == nil && error?.contains("already holds files of another run") == true, "\(error ?? "planned")")
        #expect(FileManager.default.fileExists(atPath: evaluation))

        // Nor is a plan made inside another sweep (its runs/, or a run of it).
        let (kept, _) = Self.plan(text, in: scratch, into: "other")
        let other = try #require(kept)
        try FileManager.default.createSymbolicLink(atPath: scratch.path("link"), withDestinationPath: scratch.path("other/runs"))
        for inside in ["other/runs", "other/runs/\(other.runs[0].name)/x", "link", "link/x"] {
            let (nested, error) = Self.plan(text, in: scratch, into: inside)
            #expect(nested == nil && error?.contains("lies inside the sweep") == true, "\(inside): \(error ?? "planned")")
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("other/runs/sweep.json")))
    }

    /// One data file named two ways (through `..`, or a link) is one dataset: a grid over both
    /// would be one run planned twice.
    @Test func oneDatasetNamedTwoWaysIsOnePoint() throws {
        let scratch = try ScratchDirectory()
        let folder = scratch.path("specs")
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TrainingFixtures.bundledDataset, toPath: folder + "/data/cut.hdf5")
        try FileManager.default.createSymbolicLink(atPath: folder + "/alias.hdf5", withDestinationPath: folder + "/data/cut.hdf5")
        try FileManager.default.linkItem(atPath: folder + "/data/cut.hdf5", toPath: folder + "/hard.hdf5")
        for second in ["data/../data/cut.hdf5", folder + "/data/../data/cut.hdf5", "alias.hdf5", "hard.hdf5"] {
            let text = #"{"grid": {"datasets": ["data/cut.hdf5", "SECOND"]}}"#.replacingOccurrences(of: "SECOND", with: second)
            let (sweep, error) = Self.plan(text, in: scratch)
            #expect(sweep == nil && error?.contains("are the same configuration") == true, "\(second): \(error ?? "planned")")
        }
    }

    /// Presets and data paths are read beside the specification, whatever the working
    /// directory, and the runs record them absolute; an id that names nothing there is kept.
    @Test func relativePathsAreTheSpecificationsOwn() throws {
        let scratch = try ScratchDirectory()
        let folder = scratch.path("specs")
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TrainingFixtures.bundledDataset, toPath: folder + "/data/cut.hdf5")
        var preset = TrainingConfiguration()
        preset.datasets = [TrainingFixtures.bundledDataset]
        try JSONEncoder().encode(preset).write(to: URL(fileURLWithPath: folder + "/preset.json"))
        let text = #"{"configs": ["preset.json"], "grid": {"datasets": ["data/cut.hdf5", "mysim/hopper/medium-v0"]}}"#
        let (planned, error) = Self.plan(text, in: scratch)
        let sweep = try #require(planned, "\(error ?? "")")
        let datasets = try sweep.runs.map { try sweep.configuration(of: $0).datasets }
        #expect(datasets == [[folder + "/data/cut.hdf5"], ["mysim/hopper/medium-v0"]], "\(datasets)")
    }
}
