import DecisionFlowEvaluation
import DecisionFlowExperiments
import DecisionFlowTraining
import Foundation
import TestSupport
import Testing

/// The results table on hand-made run directories with known evaluations.
@Suite struct ResultsTableTests {
    /// Writes a run directory with `configuration` and an evaluation of `scores` (one per target).
    static func run(
        in scratch: ScratchDirectory, _ name: String, dataset: String, attention: String, seed: UInt64,
        learningRate: Float = 1e-4, scores: [Double]
    ) throws -> String {
        let path = scratch.path(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var configuration = TrainingConfiguration()
        configuration.datasets = [dataset]
        configuration.attention = attention == "flow" ? .flow : .softmax
        configuration.seed = seed
        configuration.learningRate = learningRate
        configuration.steps = 500
        try JSONEncoder().encode(configuration).write(to: URL(fileURLWithPath: path + "/config.json"))
        let evaluation = RunEvaluation(
            environment: "hopper", step: 500,
            targets: zip([3600.0, 1800.0], scores).map { target, normalized in
                var scores = TargetScores(target: target, episodes: [EpisodeResult(episodeReturn: 0, length: 1)], scores: nil)
                scores.episodeCount = 10
                scores.normalizedMean = normalized
                scores.normalizedStd = 1
                return scores
            })
        try JSONEncoder().encode(evaluation).write(to: URL(fileURLWithPath: path + "/evaluation.json"))
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
        #expect(error?.description.contains("no evaluated run") == true)
    }
}
