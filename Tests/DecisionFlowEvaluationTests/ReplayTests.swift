import DecisionFlowEvaluation
import Foundation
import RLData
import RLEnvironments
import TestSupport
import Testing

/// Our MJCF models on MuJoCo 4.0.1 against the shared datasets, which gymnasium 1.2.3 recorded
/// on MuJoCo 4.0: each agreement must reach what gymnasium itself reaches replaying the same
/// file, less 0.1 point (`../shared/datasets/README.md`, "How well the recording engine
/// replays its own data"; first 3000 rows).
@Suite struct ReplayTests {
    static let datasets = SharedFolder.url.appendingPathComponent("datasets")

    /// gymnasium's own replay of a file: percentages of next observations within 1e-4, rewards
    /// within 1e-3 relative, and terminal flags that agree.
    struct Ceiling: Sendable, CustomTestStringConvertible {
        var file: String
        var observations: Double
        var rewards: Double
        var terminals: Double
        var testDescription: String { file }
    }

    static let ceilings: [Ceiling] = [
        Ceiling(file: "halfcheetah-expert", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "halfcheetah-medium-expert", observations: 99.83, rewards: 100, terminals: 100),
        Ceiling(file: "halfcheetah-medium-replay", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "halfcheetah-medium", observations: 99.83, rewards: 100, terminals: 100),
        Ceiling(file: "halfcheetah-random", observations: 99.97, rewards: 100, terminals: 100),
        Ceiling(file: "hopper-expert", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "hopper-medium-expert", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "hopper-medium-replay", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "hopper-medium", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "hopper-random", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "walker2d-expert", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "walker2d-medium-expert", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "walker2d-medium-replay", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "walker2d-medium", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "walker2d-random", observations: 100, rewards: 100, terminals: 100),
        // gymnasium 1.2.3's recordings of its newer versions and of Ant. Ant's reward divides
        // a position change by dt = 0.05, so the solver's warm start (not part of the state a
        // replay sets) moves it beyond 1e-3 on some rows, in gymnasium's replay as in ours.
        Ceiling(file: "v5/ant-v4-uniform", observations: 100, rewards: 63.53, terminals: 100),
        Ceiling(file: "v5/ant-v5-uniform", observations: 100, rewards: 63.57, terminals: 100),
        Ceiling(file: "v5/halfcheetah-v5-uniform", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "v5/hopper-v5-uniform", observations: 100, rewards: 100, terminals: 100),
        Ceiling(file: "v5/walker2d-v5-uniform", observations: 100, rewards: 100, terminals: 100),
    ]

    /// Every file in the environment its metadata names, as `d4rl-run replay` picks it.
    @Test(arguments: ceilings)
    func everyFileReplaysAsWellAsInGymnasium(ceiling: Ceiling) throws {
        let path = Self.datasets.appendingPathComponent("\(ceiling.file).hdf5").path
        // The environment and its version come from the file's metadata/behavior/env_id.
        let id = try #require(try D4RLDataset(file: path).environmentID)
        let environment = try #require(try EnvironmentCatalog.standard.make(id) as? MuJoCoEnvironment)
        #expect(environment.version == (ceiling.file.contains("-v5-") ? .v5 : .v4), "\(ceiling.file): \(id)")
        let report = try DatasetReplay.run(file: path, environment: environment, limit: 3000)
        #expect(report.transitions == 3000)
        #expect(100 * report.observationsWithin1e4 >= ceiling.observations - 0.1, "\(100 * report.observationsWithin1e4)")
        #expect(100 * report.rewardsWithin1e3Relative >= ceiling.rewards - 0.1, "\(100 * report.rewardsWithin1e3Relative)")
        #expect(100 * report.terminalsAgree >= ceiling.terminals - 0.1, "\(100 * report.terminalsAgree)")
    }

    /// A Minari dataset whose env_spec names Walker2d-v5 is followed to the v5 walker (both
    /// feet at friction 1.9), with walker2d's reference pair and targets; it replays there as
    /// the D4RL-schema recording it was written from does.
    @Test func aMinariDatasetOfVersion5IsEvaluatedInVersion5() throws {
        let minari = Self.datasets.appendingPathComponent("minari/mujoco/walker2d/uniform-v5-v0").path
        let dataset = try D4RLDataset(file: minari)
        #expect(dataset.environmentID == "Walker2d-v5")
        let entry = try EnvironmentCatalog.standard.entry(try #require(dataset.environmentID))
        #expect(entry.name == "walker2d-v5" && entry.version == 5)
        let walker = try #require(try entry.make() as? Walker2d)
        #expect(walker.version == .v5 && walker.name == "Walker2d-v5")
        #expect(dataset.referenceScores() == D4RLReferenceScores.published["walker2d"])
        #expect(entry.referenceScores == D4RLReferenceScores.published["walker2d"])
        #expect(entry.defaultTargets == [5000, 2500])
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
}
