import DecisionFlowEvaluation
import Foundation
import RLEnvironments
import Testing

/// Our MJCF models on MuJoCo 2.2.2 against the shared datasets, which gymnasium recorded on
/// MuJoCo 4.0 (thresholds from FACTS.md: what a replay with gymnasium's own model files reaches).
@Suite struct ReplayTests {
    static let datasets: URL = {
        if let override = ProcessInfo.processInfo.environment["DECISIONFLOW_SHARED"] {
            return URL(fileURLWithPath: override).appendingPathComponent("datasets")
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/datasets")
    }()

    @Test(arguments: ["halfcheetah-medium", "halfcheetah-expert", "walker2d-medium", "walker2d-expert"])
    func contactFaithfulEnvironmentsReproduceEveryTransition(name: String) throws {
        let environment = try EnvironmentRegistry.make(String(name.split(separator: "-")[0])) as! MuJoCoEnvironment
        let report = try DatasetReplay.run(
            file: Self.datasets.appendingPathComponent("\(name).hdf5").path, environment: environment)
        #expect(report.transitions == 50_000)
        #expect(report.observationsWithin1e4 >= 0.995, "\(name): \(report.observationsWithin1e4)")
        #expect(report.rewardsWithin1e3Relative >= 0.995, "\(name): \(report.rewardsWithin1e3Relative)")
        #expect(report.terminalsAgree >= 0.999, "\(name): \(report.terminalsAgree)")
    }

    /// Hopper's frictionless-contact response differs between MuJoCo 2.2.2 and 4.0 on every
    /// step that ends in contact; contact-free steps must agree.
    @Test(arguments: ["hopper-medium", "hopper-expert"])
    func hopperAgreesWhereContactsDoNotDiffer(name: String) throws {
        let report = try DatasetReplay.run(
            file: Self.datasets.appendingPathComponent("\(name).hdf5").path, environment: try Hopper())
        #expect(report.transitions == 50_000)
        #expect(report.contactFreeObservationsWithin1e4 >= 0.95, "\(name): \(report.contactFreeObservationsWithin1e4)")
        #expect(report.contactFreeTransitions > 20_000)
        #expect(report.observationsWithin0_1 >= 0.99, "\(name): \(report.observationsWithin0_1)")
        #expect(report.rewardsWithin1e3Relative >= 0.985, "\(name): \(report.rewardsWithin1e3Relative)")
        #expect(report.terminalsAgree >= 0.999, "\(name): \(report.terminalsAgree)")
    }
}
