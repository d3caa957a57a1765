import DecisionFlowTraining
import Foundation
import Testing
import TrainingTestSupport

/// Every preset in configs/ parses, is valid, and says what it claims.
@Suite struct PresetTests {
    static let directory = TrainingFixtures.packageRoot.appendingPathComponent("configs")

    static func presets() throws -> [String] {
        let top = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        let nested = try ["cpu", "long"].flatMap { folder in
            try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent(folder).path)
                .filter { $0.hasSuffix(".json") }.map { "\(folder)/\($0)" }
        }
        return (top + nested).sorted()
    }

    @Test func everyPresetIsValid() throws {
        let names = try Self.presets()
        #expect(names.count == 1 + 18 + 15 + 3, "\(names)")
        for name in names {
            let configuration = try TrainingConfiguration.read(Self.directory.appendingPathComponent(name).path)
            #expect(configuration.problems.isEmpty, "\(name): \(configuration.problems)")
            #expect(configuration.environment != nil, "\(name) names its environment")
        }
    }

    @Test func publishedHyperparametersAreThePapers() throws {
        for env in ["hopper", "halfcheetah", "walker2d"] {
            for dataset in ["medium", "medium-replay", "medium-expert"] {
                let dt = try TrainingConfiguration.read(
                    Self.directory.appendingPathComponent("\(env)-\(dataset)-dt.json").path)
                #expect(
                    dt.attention == .softmax && dt.embeddingDimension == 128 && dt.layerCount == 3 && dt.headCount == 1)
                #expect(
                    dt.learningRate == 1e-4 && dt.warmupSteps == 10_000 && dt.batchSize == 64 && dt.contextLength == 20)
                let flow = try TrainingConfiguration.read(
                    Self.directory.appendingPathComponent("\(env)-\(dataset)-flowformer.json").path)
                #expect(
                    flow.attention == .flow && flow.embeddingDimension == 256 && flow.layerCount == 3
                        && flow.headCount == 4)
                #expect(
                    flow.learningRate == 1e-3 && flow.dropout == 0.1 && flow.gradientClip == 0.25
                        && flow.steps == 100_000)
                #expect(flow.datasets == ["data/d4rl/\(env)-\(dataset)-v2.hdf5"] && flow.environment == env)
            }
        }
    }

    /// The long-context presets hold whole episodes (K 1000) at about the K 20 presets'
    /// tokens per step (K 20 × 64 windows = 1280 timesteps; K 1000 × 1 = 1000), on the data
    /// and budget of the matching `cpu/` preset.
    @Test func longContextPresetsHoldWholeEpisodes() throws {
        for name in ["hopper-medium-expert", "walker2d-medium-expert", "halfcheetah-medium"] {
            let long = try TrainingConfiguration.read(Self.directory.appendingPathComponent("long/\(name).json").path)
            let short = try TrainingConfiguration.read(Self.directory.appendingPathComponent("cpu/\(name).json").path)
            #expect(long.contextLength == 1000 && long.contextLength == long.maxEpisodeLength && long.attention == .flow)
            let ratio = Double(long.contextLength * long.batchSize) / Double(short.contextLength * short.batchSize)
            #expect(ratio > 0.5 && ratio < 2, "\(name): tokens per step \(ratio)× the K 20 preset's")
            #expect(long.datasets == short.datasets && long.steps == short.steps && long.environment == short.environment)
        }
    }
}
