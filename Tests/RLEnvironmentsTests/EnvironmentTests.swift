import RLEnvironments
import Testing

@Suite struct EnvironmentTests {
    @Test(arguments: ["pendulum", "mountaincar"])
    func badActionsAreRefusedAndNothingIsStepped(name: String) throws {
        let environment = try EnvironmentCatalog.standard.make(name)
        _ = environment.reset(seed: 3)
        let before = environment.state
        #expect(throws: EnvironmentError.wrongActionLength(environment: environment.name, expected: 1, got: 2)) {
            try environment.step(action: [0, 0])
        }
        #expect(throws: EnvironmentError.self) { try environment.step(action: [.nan]) }
        #expect(throws: EnvironmentError.self) { try environment.step(action: [-.infinity]) }
        #expect(environment.state == before)
        #expect(environment.elapsedSteps == 0)
        _ = try environment.step(action: [0.5])
        #expect(environment.elapsedSteps == 1)
    }

    @Test func seededResetsRepeat() throws {
        for name in ["pendulum", "mountaincar"] {
            let a = try EnvironmentCatalog.standard.make(name)
            let b = try EnvironmentCatalog.standard.make(name)
            #expect(a.reset(seed: 42) == b.reset(seed: 42))
            #expect(a.reset(seed: 42) != a.reset(seed: 43))
        }
    }

    @Test func stepAfterTheEndNeedsAReset() throws {
        let pendulum = Pendulum()
        _ = pendulum.reset(seed: 1)
        for _ in 0..<199 { #expect(try pendulum.step(action: [0]).truncated == false) }
        #expect(try pendulum.step(action: [0]).truncated == true)
        #expect(throws: EnvironmentError.needsReset(environment: "Pendulum-v1")) { try pendulum.step(action: [0]) }
    }

    /// The goal test's exact inequalities: position ≥ 0.45 and velocity ≥ 0.
    @Test func mountainCarGoalBoundary() throws {
        let car = MountainCarContinuous()
        _ = car.reset(seed: 1)
        // Just below the goal, moving right fast enough to cross it in one step.
        try car.setState([0.44, 0.02])
        #expect(try car.step(action: [1]).terminated)
        // Just below, moving too slowly to reach 0.45.
        try car.setState([0.40, 0.001])
        #expect(try car.step(action: [0]).terminated == false)
        // At the left wall moving left: velocity is zeroed.
        try car.setState([-1.2, -0.05])
        #expect(try car.step(action: [-1]).observation[1] == 0)
    }
}
