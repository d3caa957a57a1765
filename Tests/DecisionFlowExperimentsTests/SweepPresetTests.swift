import DecisionFlowExperiments
import Foundation
import TestSupport
import Testing
import TrainingTestSupport

/// The sweep presets in configs/sweeps plan into the tables they describe.
@Suite struct SweepPresetTests {
    /// Plans `name` with its preset paths made absolute (they are relative to the repository root).
    static func plan(_ name: String) throws -> Sweep {
        let scratch = try ScratchDirectory()
        let source = TrainingFixtures.packageRoot.appendingPathComponent("configs/sweeps/\(name)")
        var specification = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as? [String: Any])
        let configs = try #require(specification["configs"] as? [String])
        specification["configs"] = configs.map { TrainingFixtures.packageRoot.appendingPathComponent($0).path }
        let copy = scratch.path("spec.json")
        try JSONSerialization.data(withJSONObject: specification).write(to: URL(fileURLWithPath: copy))
        let sweep = try Sweep.plan(specification: copy, into: scratch.path("sweep"))
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
