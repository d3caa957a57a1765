import DecisionFlowEvaluation
import DecisionFlowExperiments
import DecisionFlowTraining
import Foundation
import TestSupport
import Testing
import TrainingTestSupport

/// The results table over real (two-step) runs whose evaluations are written by hand with
/// known scores and the evidence of the checkpoint they sit beside, as `sweep run` writes it.
@Suite struct ResultsTableTests {
    /// A copy of the bundled dataset at `relative` in `scratch` (the row label comes from its
    /// name), made once per path.
    static func dataset(in scratch: ScratchDirectory, _ relative: String) throws -> String {
        let path = scratch.path(relative)
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: TrainingFixtures.bundledDataset, toPath: path)
        }
        return path
    }

    /// Trains a two-step run in `scratch/name` on a copy of the bundled data named `dataset`,
    /// then writes its evaluation: `scores` (one per target, nil for a target without a
    /// normalized score), bound to its checkpoint.
    static func run(
        in scratch: ScratchDirectory, _ name: String, dataset: String, attention: String, seed: UInt64,
        learningRate: Float = 1e-4, scores: [Double?]
    ) throws -> String {
        let path = scratch.path(name)
        var configuration = TrainingFixtures.smallConfiguration(
            datasets: [try Self.dataset(in: scratch, dataset)], steps: 2)
        configuration.attention = attention == "flow" ? .flow : .softmax
        configuration.seed = seed
        configuration.learningRate = learningRate
        try TrainingRun.start(configuration: configuration, directory: path).run()
        let saved = try TrainingRun.savedCheckpoint(in: path)
        let evaluation = RunEvaluation(
            environment: "hopper", step: saved.state.step,
            targets: zip([3600.0, 1800.0], scores).map { target, normalized in
                var scores = TargetScores(target: target, episodes: [EpisodeResult(episodeReturn: 0, length: 1)], scores: nil)
                scores.episodeCount = 10
                scores.normalizedMean = normalized
                scores.normalizedStd = normalized.map { _ in 1 }
                return scores
            },
            evaluated: EvaluationRecord.evidence(for: saved))
        try evaluation.write(to: RunDirectory(path).evaluationPath)
        return path
    }

    @Test func cellsAreMeansAndPopulationStdsOverSeeds() throws {
        let scratch = try ScratchDirectory()
        var runs: [String] = []
        for (seed, (flow, softmax)) in [(1, (60.0, 50.0)), (2, (70.0, 54.0)), (3, (80.0, 52.0))] {
            runs.append(try Self.run(in: scratch, "m-f-\(seed)", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: UInt64(seed), scores: [flow, flow / 2]))
            runs.append(try Self.run(in: scratch, "m-s-\(seed)", dataset: "d/hopper-medium.hdf5", attention: "softmax", seed: UInt64(seed), scores: [softmax, 1]))
        }
        runs.append(try Self.run(in: scratch, "r-f-1", dataset: "d/hopper-medium-replay.hdf5", attention: "flow", seed: 1, scores: [30, 10]))
        runs.append(try Self.run(in: scratch, "r-s-1", dataset: "d/hopper-medium-replay.hdf5", attention: "softmax", seed: 1, scores: [20, 10]))
        let table = try ResultsTable.collect(runs)
        #expect(table.datasets == ["hopper-medium", "hopper-medium-replay"])
        #expect(table.columns == ["attention=flow", "attention=softmax"])
        let flow = try #require(table.cell("hopper-medium", "attention=flow", target: 0))
        expectClose(flow.mean, 70, atol: 1e-9, rtol: 0, "flow mean")
        expectClose(flow.std, (200.0 / 3).squareRoot(), atol: 1e-9, rtol: 0, "flow std")
        #expect(flow.seeds == [1, 2, 3])
        let softmax = try #require(table.cell("hopper-medium", "attention=softmax", target: 0))
        expectClose(softmax.mean, 52, atol: 1e-9, rtol: 0, "softmax mean")
        expectClose(softmax.std, (8.0 / 3).squareRoot(), atol: 1e-9, rtol: 0, "softmax std")
        expectClose(table.cell("hopper-medium", "attention=flow", target: 1)?.mean, 35, atol: 1e-9, rtol: 0, "target 1")
        expectClose(table.average("attention=flow", target: 0), 50, atol: 1e-9, rtol: 0, "average")
        #expect(table.markdown.contains("| hopper-medium | 70.0 ± 8.2 | 35.0 ± 4.1 | 52.0 ± 1.6 | 1.0 ± 0.0 |"), "\(table.markdown)")
        #expect(table.markdown.contains("| average | **50.0** |"))
        #expect(table.csv.split(separator: "\n").count == 1 + 8)
    }

    @Test func runsThatDifferBeyondTheSeedAreNeverAveraged() throws {
        let scratch = try ScratchDirectory()
        let runs = [
            try Self.run(in: scratch, "a", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 1, scores: [60, 30]),
            try Self.run(in: scratch, "b", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 2, learningRate: 1e-3, scores: [90, 30]),
        ]
        // By default the difference becomes the columns...
        let table = try ResultsTable.collect(runs)
        #expect(table.columnFields == ["learningRate"])
        #expect(table.columns.count == 2)
        #expect(table.cells.allSatisfy { $0.seeds.count == 1 })
        // ...and with columns chosen, any other difference is an error that names the field.
        let error = #expect(throws: TrainingError.self) { try ResultsTable.collect(runs, columns: ["attention"]) }
        #expect(error?.description.contains("learningRate") == true, "\(error?.description ?? "")")
    }

    @Test func aDirectoryWithoutEvaluationsIsRefused() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("pending")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try JSONEncoder().encode(TrainingConfiguration()).write(to: URL(fileURLWithPath: path + "/config.json"))
        let error = #expect(throws: TrainingError.self) { try ResultsTable.collect([path]) }
        #expect(error?.description.contains("holds no run with an evaluation that holds") == true, "\(error?.description ?? "")")
    }

    /// A run reached again (the same path twice, another spelling of it, a link to it) or
    /// copied (the same checkpoint elsewhere) is one seed, not several.
    @Test func aRunReachedTwiceOrCopiedIsCountedOnce() throws {
        let scratch = try ScratchDirectory()
        let one = try Self.run(in: scratch, "one", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 1, scores: [60, 30])
        let two = try Self.run(in: scratch, "two", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 2, scores: [70, 40])
        let link = scratch.path("link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: one)
        let copy = scratch.path("copy")
        try FileManager.default.copyItem(atPath: one, toPath: copy)
        let once = try ResultsTable.collect([one, two])
        let reachedAgain = try ResultsTable.collect([one, two, one, one + "/", link, copy])
        #expect(reachedAgain.cells == once.cells)
        #expect(reachedAgain.cells.allSatisfy { $0.seeds == [1, 2] })
        #expect(reachedAgain.notCounted.count == 3, "\(reachedAgain.notCounted)")
        #expect(reachedAgain.notCounted.contains { $0.directory == copy && $0.reason.contains("same checkpoint") })
        #expect(reachedAgain.markdown.contains("seeds 1, 2"), "\(reachedAgain.markdown)")
    }

    /// An evaluation is believed only while it matches its run: each of these is left out
    /// with its reason, and the runs that hold make the table.
    @Test func evaluationsThatDoNotHoldAreNotCounted() throws {
        let scratch = try ScratchDirectory()
        let good = try Self.run(in: scratch, "good", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 1, scores: [60, 30])
        func variant(_ name: String, seed: UInt64, _ spoil: (String) throws -> Void) throws -> String {
            let path = try Self.run(in: scratch, name, dataset: "d/hopper-medium.hdf5", attention: "flow", seed: seed, scores: [99, 99])
            try spoil(RunDirectory(path).evaluationPath)
            return path
        }
        func edit(_ path: String, _ change: (inout RunEvaluation) -> Void) throws {
            var evaluation = try RunEvaluation.read(path)
            change(&evaluation)
            try evaluation.write(to: path)
        }
        let unbound = try variant("unbound", seed: 2) { try edit($0) { $0.evaluated = nil } }
        let foreign = try variant("foreign", seed: 3) { path in
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.copyItem(atPath: RunDirectory(good).evaluationPath, toPath: path)
        }
        let empty = try variant("empty", seed: 5) { try edit($0) { $0.targets = [] } }
        let folder = try variant("folder", seed: 6) { path in
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        }
        // config.json edited to other data after the run finished: the checkpoint disagrees.
        let edited = try variant("edited", seed: 7) { path in
            let directory = RunDirectory((path as NSString).deletingLastPathComponent)
            var configuration = try TrainingConfiguration.read(directory.configurationPath)
            configuration.datasets = [try Self.dataset(in: scratch, "d/walker2d-medium.hdf5")]
            try JSONEncoder().encode(configuration).write(to: URL(fileURLWithPath: directory.configurationPath))
        }
        let all = [good, unbound, foreign, empty, folder, edited]
        let table = try ResultsTable.collect(all)
        #expect(table.cells.count == 2 && table.cells.allSatisfy { $0.seeds == [1] }, "\(table.cells)")
        #expect(table.datasets == ["hopper-medium"])
        let reasons = Dictionary(uniqueKeysWithValues: table.notCounted.map { ($0.directory, $0.reason) })
        #expect(reasons[unbound]?.contains("does not record which checkpoint") == true, "\(reasons)")
        #expect(reasons[foreign]?.contains("evaluated checkpoint") == true, "\(reasons)")
        #expect(reasons[empty]?.contains("no target") == true, "\(reasons)")
        #expect(reasons[folder]?.contains("is a folder") == true, "\(reasons)")
        #expect(reasons[edited]?.contains("datasets") == true, "\(reasons)")
        #expect(table.markdown.contains("5 run(s) not counted"), "\(table.markdown)")
    }

    /// Scores so large that their spread overflows make no cell: the table is refused, naming
    /// the cell, instead of printing `inf ± inf`.
    @Test func scoresThatOverflowAreRefused() throws {
        let scratch = try ScratchDirectory()
        let runs = [
            try Self.run(in: scratch, "a", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 1, scores: [1e308, 30]),
            try Self.run(in: scratch, "b", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 2, scores: [-1e308, 30]),
        ]
        let error = #expect(throws: TrainingError.self) { try ResultsTable.collect(runs) }
        #expect(error?.description.contains("hopper-medium") == true && error?.description.contains("overflow") == true, "\(error?.description ?? "")")
    }

    /// Huge but finite scores (an edited evaluation) make a chart of a few ticks, not one
    /// tick every 50 up to 10³⁰⁰ (which ran the report out of memory).
    @Test func hugeScoresMakeAChartOfAFewTicks() throws {
        let scratch = try ScratchDirectory()
        for score in [1e9, 1e300] {
            let runs = [
                try Self.run(in: scratch, "r\(score)", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 1, scores: [score, 30])
            ]
            let svg = try ResultsTable.collect(runs).svg
            let ticks = svg.components(separatedBy: "stroke=\"#ddd\"").count - 1
            #expect(ticks >= 2 && ticks <= 12, "\(ticks) ticks for a score of \(score)")
            #expect(svg.utf8.count < 10_000)
        }
    }

    /// A run without a normalized score at a target is not averaged as if it had one: the
    /// cell holds the other seeds, and says which.
    @Test func aMissingScoreIsNotAveraged() throws {
        let scratch = try ScratchDirectory()
        let runs = [
            try Self.run(in: scratch, "s1", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 1, scores: [60, nil]),
            try Self.run(in: scratch, "s2", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 2, scores: [nil, 20]),
        ]
        let table = try ResultsTable.collect(runs)
        let first = try #require(table.cell("hopper-medium", "score", target: 0))
        #expect(first.seeds == [1] && first.mean == 60 && first.std == 0)
        let second = try #require(table.cell("hopper-medium", "score", target: 1))
        #expect(second.seeds == [2] && second.mean == 20)
        // No score anywhere: refused, not an empty table that passes for a result.
        let unscored = [try Self.run(in: scratch, "s3", dataset: "d/hopper-medium.hdf5", attention: "flow", seed: 3, scores: [nil, nil])]
        let error = #expect(throws: TrainingError.self) { try ResultsTable.collect(unscored) }
        #expect(error?.description.contains("no D4RL normalized score") == true, "\(error?.description ?? "")")
    }

    /// Datasets whose names agree but whose paths do not (Minari ids that end alike,
    /// `mujoco/hopper/medium-v0` and `mujoco/walker2d/medium-v0`) keep rows of their own.
    @Test func datasetsThatEndAlikeKeepTheirOwnRows() throws {
        let scratch = try ScratchDirectory()
        let runs = [
            try Self.run(in: scratch, "h", dataset: "hopper/medium-v0.hdf5", attention: "flow", seed: 1, scores: [60, 30]),
            try Self.run(in: scratch, "w", dataset: "walker2d/medium-v0.hdf5", attention: "flow", seed: 1, scores: [80, 40]),
        ]
        let table = try ResultsTable.collect(runs)
        #expect(table.datasets.count == 2, "\(table.datasets)")
        #expect(table.datasets.allSatisfy { $0.hasSuffix("medium-v0.hdf5") }, "\(table.datasets)")
        #expect(Set(table.cells.filter { $0.targetIndex == 0 }.map(\.mean)) == [60, 80])
    }
}
