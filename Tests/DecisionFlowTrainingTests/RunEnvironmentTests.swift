@testable import DecisionFlowTraining
import RLData
import RLEnvironments
import TestSupport
import TrainingTestSupport
import Testing

/// Which environment a run is for: the data's version of the task a preset names, a version
/// named explicitly, and errors that name both sides.
@Suite struct RunEnvironmentTests {
    static let minariWalker = SharedFolder.dataset("minari/mujoco/walker2d/uniform-v5-v0")

    func trainer(_ dataset: D4RLDataset, environment: String?) throws -> Trainer {
        var configuration = TrainingFixtures.smallConfiguration(datasets: dataset.files, steps: 1)
        configuration.environment = environment
        return try Trainer(configuration: configuration, dataset: dataset)
    }

    @Test func aPresetsTaskGetsTheVersionTheDataWasRecordedIn() throws {
        let dataset = try D4RLDataset(file: Self.minariWalker)
        let preset = try trainer(dataset, environment: "walker2d")
        #expect(preset.environment?.name == "walker2d-v5")
        #expect(preset.warnings.contains { $0.contains("recorded in Walker2d-v5") && $0.contains("not in Walker2d-v4") })
        let unnamed = try trainer(dataset, environment: nil)
        #expect(unnamed.environment?.name == "walker2d-v5" && unnamed.warnings.allSatisfy { !$0.contains("Walker2d") })
        // A version named explicitly is followed, and the warning says the data named another.
        let explicit = try trainer(dataset, environment: "Walker2d-v4")
        #expect(explicit.environment?.name == "walker2d")
        #expect(explicit.warnings.contains { $0.contains("names Walker2d-v5, but the run is evaluated in Walker2d-v4") })
    }

    @Test func theBundledHopperDataNeedsNoWarning() throws {
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        #expect(dataset.environmentID == "Hopper-v4")
        for name in ["hopper", "Hopper-v4", "hopper-v3", nil] {
            let trainer = try trainer(dataset, environment: name)
            #expect(trainer.environment?.name == "hopper", "\(name ?? "none")")
            #expect(trainer.warnings.allSatisfy { !$0.contains("Hopper") }, "\(trainer.warnings)")
        }
    }

    @Test func unknownNamesAndOtherWidthsAreErrorsNamingBoth() throws {
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        #expect {
            try trainer(dataset, environment: "hoppr")
        } throws: { error in
            guard case .badConfiguration(_, let problem)? = error as? TrainingError else { return false }
            return problem.contains("no environment named 'hoppr'") && problem.contains("did you mean hopper (Hopper-v4)")
        }
        #expect {
            try trainer(dataset, environment: "Pendulum-v1")
        } throws: { error in
            "\(error)".contains("pendulum (Pendulum-v1) has observations of 3 and actions of 1, but the data")
                && "\(error)".contains("has 11 and 3")
        }
    }

    /// Metadata that names a version whose widths are not the data's is blamed, even when a
    /// preset named the task; files that name different environments are refused; an id the
    /// catalog does not know is reported, not dropped in silence.
    @Test func theDataNamingItsEnvironmentIsCheckedAndReported() throws {
        let scratch = try ScratchDirectory()
        try TrainingFixtures.writeSmallDataset(scratch.path("walker.hdf5"), environmentID: "Walker2d-v5")
        try TrainingFixtures.writeSmallDataset(scratch.path("hopper.hdf5"), environmentID: "Hopper-v4")
        try TrainingFixtures.writeSmallDataset(scratch.path("mine.hdf5"), environmentID: "PointMass-v9")
        #expect {
            try trainer(D4RLDataset(file: scratch.path("walker.hdf5")), environment: "walker2d")
        } throws: { error in
            "\(error)".contains("the metadata of \(scratch.path("walker.hdf5")) names environment Walker2d-v5")
                && "\(error)".contains("has 3 and 2: the data is mislabelled")
        }
        #expect {
            try trainer(D4RLDataset(files: [scratch.path("hopper.hdf5"), scratch.path("walker.hdf5")]), environment: nil)
        } throws: { error in
            "\(error)".contains("names environment Hopper-v4 but \(scratch.path("walker.hdf5")) names Walker2d-v5")
        }
        let unknown = try trainer(D4RLDataset(file: scratch.path("mine.hdf5")), environment: nil)
        #expect(unknown.environment == nil)
        #expect(unknown.warnings.contains { $0.contains("names environment 'PointMass-v9', which the catalog does not know") })
    }

    /// A checkpoint's environment against its run's configuration, by the same rule.
    @Test func checkpointsAgreeWithTheirConfigurationByTheSameRule() {
        #expect(RunEnvironment.agrees(configured: "walker2d", stored: "walker2d-v5"))
        #expect(RunEnvironment.agrees(configured: "Hopper-v3", stored: "hopper"))
        #expect(!RunEnvironment.agrees(configured: "Walker2d-v4", stored: "walker2d-v5"))
        #expect(!RunEnvironment.agrees(configured: "walker2d", stored: "hopper"))
        #expect(!RunEnvironment.agrees(configured: "mine", stored: "yours"))
    }
}
