import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import RLData
import RLEnvironments
import TestSupport
import Testing

/// A user's environment, evaluated through the catalog like the built-in ones: a hopper under
/// another id, so that a policy trained on the bundled hopper data acts in it.
@Suite(.serialized) struct CatalogEvaluationTests {
    static func catalog() throws -> EnvironmentCatalog {
        let catalog = try EnvironmentCatalog(entries: EnvironmentCatalog.standard.entries)
        try catalog.register(
            id: "MyHopper-v0", referenceScores: D4RLReferenceScores(minimum: 0, maximum: 1000), targets: [900, 450]
        ) { try Hopper() }
        return catalog
    }

    @Test func aCheckpointNamingAUsersEnvironmentIsEvaluatedThere() throws {
        let (model, encoding) = try EvaluationTests.trainedPolicy(steps: 1)
        let checkpoint = Checkpoint(model: model, encoding: encoding, environment: "MyHopper-v0")
        let catalog = try Self.catalog()
        let (name, reports) = try ReferenceEvaluation.evaluate(
            checkpoint: checkpoint, source: "memory", episodes: 2, seed: 5, threads: 1, catalog: catalog)
        #expect(name == "MyHopper-v0")
        #expect(reports.map(\.target) == [900, 450] && reports.allSatisfy { $0.episodeCount == 2 })
        // Its own reference pair scores it: 100 · return / 1000.
        for report in reports {
            expectClose(report.normalizedMean, report.returnMean / 10, atol: 1e-9, rtol: 1e-12, "normalized")
        }
        // The same episodes as in the built-in hopper, which it wraps.
        let (_, builtIn) = try ReferenceEvaluation.evaluate(
            checkpoint: checkpoint, source: "memory", environment: "hopper", targets: [900], episodes: 2, seed: 5,
            threads: 1)
        #expect(builtIn[0].episodes.map(\.length) == reports[0].episodes.map(\.length))
        // Where it is not registered, the error names the checkpoint, its environment, the
        // close matches and what to do.
        #expect {
            try ReferenceEvaluation.evaluate(checkpoint: checkpoint, source: "memory.safetensors", episodes: 1, threads: 1)
        } throws: { error in
            guard case .unknownEnvironment(let file, let name, _)? = error as? EvaluationError else { return false }
            return file == "memory.safetensors" && name == "MyHopper-v0" && "\(error)".contains("did you mean hopper (Hopper-v4)")
                && "\(error)".contains("evaluate --env NAME")
        }
    }

    /// `evaluate --env walker2d` on a checkpoint recorded in Walker2d-v5 evaluates there, as
    /// training resolved it; a version named explicitly is followed.
    @Test func aTaskWithoutAVersionTakesTheCheckpointsVersion() throws {
        let model = DecisionTransformer(
            configuration: ModelConfiguration(stateDimension: 17, actionDimension: 6, embeddingDimension: 8, layerCount: 1),
            batchCapacity: 1, seed: 1)
        let checkpoint = Checkpoint(model: model, environment: "walker2d-v5")
        func resolved(_ flag: String?) throws -> String? {
            try ReferenceEvaluation.environment(flag, checkpoint: checkpoint, source: "c.safetensors")?.name
        }
        #expect(try resolved(nil) == "walker2d-v5")
        #expect(try resolved("walker2d") == "walker2d-v5")
        #expect(try resolved("Walker2d-v4") == "walker2d")
        #expect(try resolved("halfcheetah") == "halfcheetah")
    }

    @Test func aPolicyComesWithItsEnvironmentsEntry() throws {
        let scratch = try ScratchDirectory()
        let (model, encoding) = try EvaluationTests.trainedPolicy(steps: 1)
        let path = scratch.path("policy.safetensors")
        try Checkpoint(model: model, encoding: encoding, environment: "MyHopper-v0").write(to: path)
        let catalog = try Self.catalog()
        let (policy, entry) = try DecisionPolicy.withEnvironment(checkpointPath: path, catalog: catalog)
        #expect(entry.id == "MyHopper-v0" && policy.observationDimension == entry.observationWidth)
        let simulator = try entry.make()
        policy.reset(targetReturn: Float(entry.defaultTargets[0]))
        let action = try policy.action(for: simulator.reset(seed: 1))
        #expect(action.count == entry.actionWidth && action.allSatisfy(\.isFinite))
        // An environment of other widths is refused, naming both.
        #expect {
            try DecisionPolicy.withEnvironment(checkpointPath: path, environment: "Walker2d-v5", catalog: catalog)
        } throws: { error in
            "\(error)" == "Walker2d-v5 has observations of 17 and actions of 6, but the model in \(path) has 11 and 3"
        }
        #expect(throws: EvaluationError.self) {
            try Checkpoint(model: model, encoding: encoding).write(to: scratch.path("anonymous.safetensors"))
            _ = try DecisionPolicy.withEnvironment(checkpointPath: scratch.path("anonymous.safetensors"), catalog: catalog)
        }
    }
}
