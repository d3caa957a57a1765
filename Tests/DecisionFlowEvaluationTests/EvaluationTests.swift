import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import DecisionFlowTraining
import Foundation
import RLData
import RLEnvironments
import TestSupport
import Testing

@Suite(.serialized) struct EvaluationTests {
    static let bundled = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("data/hopper-medium-replay-tail25k.hdf5").path

    /// A small Decision-Flowformer trained briefly on hopper data.
    static func trainedPolicy(steps: Int) throws -> (DecisionTransformer, ContextEncoding) {
        var configuration = TrainingConfiguration()
        configuration.datasets = [bundled]
        configuration.embeddingDimension = 64
        configuration.layerCount = 2
        configuration.headCount = 2
        configuration.batchSize = 32
        configuration.contextLength = 10
        configuration.learningRate = 1e-3
        configuration.warmupSteps = 50
        configuration.steps = steps
        configuration.seed = 3
        let trainer = try Trainer(configuration: configuration, dataset: try D4RLDataset(file: bundled))
        for _ in 0..<steps { try trainer.trainStep() }
        return (trainer.model, trainer.encoding)
    }

    /// Eight episodes at once give the same episodes as one by one: the same lengths, and
    /// returns equal to rounding. Not bit for bit: OpenBLAS rounds a row of a product
    /// differently depending on how many rows the product has (its edge kernels sum in another
    /// order), and a batch of 8 has 8 times the rows; 1e-6 relative is a thousand times the
    /// differences seen.
    @Test func batchedEqualsSequential() throws {
        let (trained, encoding) = try Self.trainedPolicy(steps: 60)
        let together = try RolloutEvaluation.run(
            weights: trained.weights, encoding: encoding, environments: (0..<8).map { _ in try Hopper() },
            target: 3600, seed: 40, threads: 2)
        let oneByOne = try RolloutEvaluation.runSequentially(
            policy: DecisionPolicy(weights: trained.weights, encoding: encoding, threads: 2),
            environments: (0..<8).map { _ in try Hopper() },
            target: 3600, seed: 40)
        #expect(together.map(\.length) == oneByOne.map(\.length))
        expectClose(together.map(\.episodeReturn), oneByOne.map(\.episodeReturn), atol: 0, rtol: 1e-6, "returns")
        #expect(Set(together.map(\.length)).count > 1, "episodes end at different steps: \(together)")
    }

    /// A policy trained for a few hundred steps hops further than an untrained one: same
    /// environment, same seeds.
    @Test func trainingBeatsRandomWeights() throws {
        let (trained, encoding) = try Self.trainedPolicy(steps: 400)
        let untrained = ModelWeights(configuration: trained.configuration, seed: 99)
        let evaluated = ModelWeights(checkpoint: Checkpoint(model: trained))
        func score(_ weights: ModelWeights) throws -> Double {
            let episodes = try RolloutEvaluation.run(
                weights: weights, encoding: encoding, environments: (0..<5).map { _ in try Hopper() },
                target: 1800, seed: 7, threads: 2)
            return TargetReport(target: 1800, episodes: episodes, scores: try EnvironmentCatalog.standard.entry("hopper").referenceScores)
                .normalizedMean ?? .nan
        }
        let trainedScore = try score(evaluated)
        let randomScore = try score(untrained)
        #expect(
            trainedScore >= randomScore + 5, "trained \(trainedScore) vs untrained \(randomScore) (normalized ×100)")
    }

    @Test func aModelForAnotherEnvironmentIsRefused() throws {
        let (model, encoding) = try Self.trainedPolicy(steps: 1)
        do {
            _ = try RolloutEvaluation.run(
                weights: model.weights, encoding: encoding, environments: [try Walker2d()], target: 1000, seed: 0,
                threads: 1)
            Issue.record("ran a hopper policy in walker2d")
        } catch let error as EvaluationError {
            #expect("\(error)".contains("Walker2d-v4") && "\(error)".contains("17") && "\(error)".contains("11"))
        }
    }

    @Test func normalizedScoresUseFACTSReferencePairs() throws {
        func report(_ target: Double, _ episodes: [EpisodeResult], _ environment: String) throws -> TargetReport {
            TargetReport(target: target, episodes: episodes, scores: try EnvironmentCatalog.standard.entry(environment).referenceScores)
        }
        let episodes = [
            EpisodeResult(episodeReturn: 3234.3, length: 1000), EpisodeResult(episodeReturn: -20.272305, length: 10),
        ]
        let hopper = try report(3600, episodes, "hopper")
        expectClose(hopper.normalizedMean, 50, atol: 1e-9, rtol: 0, "hopper mean")
        expectClose(hopper.normalizedStd, 50, atol: 1e-9, rtol: 0, "hopper std")
        let cheetah = try report(0, [EpisodeResult(episodeReturn: 12135, length: 1)], "halfcheetah")
        expectClose(cheetah.normalizedMean, 100, atol: 1e-9, rtol: 0, "halfcheetah")
        let walker = try report(0, [EpisodeResult(episodeReturn: 1.629008, length: 1)], "walker2d")
        expectClose(walker.normalizedMean, 0, atol: 1e-9, rtol: 0, "walker2d")
        #expect(try report(0, episodes, "pendulum").normalizedMean == nil)
    }
}
