import DecisionFlowEvaluation
import Foundation
import RLData
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

    /// A recording whose next observations hold a NaN is refused, naming the key and the row,
    /// instead of being scored (a NaN error would compare as neither within nor beyond 1e-4).
    @Test func aNonFiniteNextObservationIsRefusedNamingItsRow() throws {
        let source = try HDF5File.open(Self.datasets.appendingPathComponent("walker2d-medium.hdf5").path)
        let rows = 0..<20
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString).hdf5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // The writer's handle closes when the function returns, before the replay opens the file.
        func writeCopy() throws {
            let file = try HDF5File.create(path)
            try file.createGroup("infos")
            for key in ["infos/qpos", "infos/qvel", "actions", "rewards", "next_observations"] {
                let dataset = try source.dataset(key)
                var values = try dataset.readRows(rows, as: Double.self)
                if key == "next_observations" { values[7 * dataset.rowWidth + 3] = .nan }
                let shape = dataset.shape.count == 1 ? [rows.count] : [rows.count, dataset.rowWidth]
                try file.write(values, to: key, type: .float64, shape: shape)
            }
            try file.write(Array(try source.dataset("terminals").readBooleans()[rows]), to: "terminals")
            try file.flush()
        }
        try writeCopy()
        do {
            let report = try DatasetReplay.run(file: path, environment: try Walker2d())
            Issue.record("replayed a NaN next observation: \(report.observationsWithin1e4) within 1e-4")
        } catch let error as D4RLError {
            #expect("\(error)".contains("next_observations") && "\(error)".contains("row 7"), "\(error)")
        }
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
