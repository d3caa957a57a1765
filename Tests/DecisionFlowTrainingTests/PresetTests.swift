import DecisionFlowTraining
import Foundation
import Testing

/// Every preset in configs/ parses, is valid, and says what it claims.
@Suite struct PresetTests {
    static let directory = TrainingFixtures.packageRoot.appendingPathComponent("configs")

    static func presets() throws -> [String] {
        let top = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        let cpu = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("cpu").path)
            .filter { $0.hasSuffix(".json") }.map { "cpu/\($0)" }
        return (top + cpu).sorted()
    }

    @Test func everyPresetIsValid() throws {
        let names = try Self.presets()
        #expect(names.count == 1 + 18 + 15, "\(names)")
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

    /// The README documents every field of the configuration.
    @Test func everyFieldIsDocumented() throws {
        let readme = try String(contentsOf: Self.directory.appendingPathComponent("README.md"), encoding: .utf8)
        let fields =
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainingConfiguration())) as? [String: Any]
            ?? [:]
        for field in fields.keys.sorted() + ["environment", "mlpDimension", "evaluationTarget"] {
            #expect(readme.contains("| `\(field)` |"), "configs/README.md does not document \(field)")
        }
    }
}
