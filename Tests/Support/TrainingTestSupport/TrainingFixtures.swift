import DecisionFlowTraining
import Foundation
import RLData

/// Data and configurations the training and experiment tests share.
public enum TrainingFixtures {
    /// The repository's root.
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The dataset the repository carries (hopper, 25,000 steps).
    public static let bundledDataset = packageRoot.appendingPathComponent("data/hopper-medium-replay-tail25k.hdf5").path

    /// Episodes of lengths 9 (terminal), 3 (timeout, shorter than K), 7 (terminal) and a
    /// 2-step unfinished tail at the end of the file; 3-dim states, 2-dim actions; with
    /// `environmentID` as `metadata/behavior/env_id` when given.
    public static func writeSmallDataset(_ path: String, environmentID: String? = nil) throws {
        let writer = try TrajectoryWriter(
            path: path,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: 3, actionDimension: 2, recordsNextObservations: false))
        var row = 0
        for (length, ending) in [(9, "terminal"), (3, "timeout"), (7, "terminal"), (2, "none")] {
            for t in 0..<length {
                let last = t == length - 1
                try writer.append(
                    observation: [Float(row), Float(row % 3) * 2, -Float(row) / 4], action: [Float(row % 5) / 5, -0.5],
                    reward: Float(row % 4) + 0.5, terminal: last && ending == "terminal",
                    timeout: last && ending == "timeout")
                row += 1
            }
        }
        if let environmentID { writer.setMetadata("behavior/env_id", .string(environmentID)) }
        try writer.finish()
    }

    /// A small, quick model for tests.
    public static func smallConfiguration(datasets: [String], steps: Int) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.datasets = datasets
        configuration.embeddingDimension = 32
        configuration.layerCount = 2
        configuration.headCount = 2
        configuration.batchSize = 16
        configuration.contextLength = 10
        configuration.learningRate = 1e-3
        configuration.warmupSteps = 20
        configuration.steps = steps
        configuration.seed = 7
        configuration.checkpointEvery = 50
        configuration.logEvery = 25
        return configuration
    }
}
