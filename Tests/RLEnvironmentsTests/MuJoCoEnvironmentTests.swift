import Foundation
import RLEnvironments
import Testing

@Suite struct MuJoCoEnvironmentTests {
    /// gym v3's healthy tests, at each bound: just inside is healthy, just outside is not.
    @Test func hopperTerminationBounds() {
        // qpos: x, z, angle, thigh, leg, foot; qvel: 6 values.
        func state(z: Double = 1.25, angle: Double = 0, joint: Double = 0, velocity: Double = 0) -> [Double] {
            [0, z, angle, joint, 0, 0, velocity, 0, 0, 0, 0, 0]
        }
        let tiny = 1e-9
        #expect(Hopper.isHealthy(state()))
        #expect(Hopper.isHealthy(state(z: 0.7 + tiny)))
        #expect(!Hopper.isHealthy(state(z: 0.7)))
        #expect(Hopper.isHealthy(state(angle: 0.2 - tiny)) && Hopper.isHealthy(state(angle: -0.2 + tiny)))
        #expect(!Hopper.isHealthy(state(angle: 0.2)) && !Hopper.isHealthy(state(angle: -0.2)))
        #expect(Hopper.isHealthy(state(joint: 100 - tiny)) && !Hopper.isHealthy(state(joint: 100)))
        #expect(Hopper.isHealthy(state(velocity: -100 + 1e-6)) && !Hopper.isHealthy(state(velocity: -100)))
        // x (state[0]) and z (state[1]) are outside the ±100 check; a NaN anywhere after them is unhealthy.
        #expect(Hopper.isHealthy([500] + state().dropFirst()))
        #expect(!Hopper.isHealthy(state(velocity: .nan)))
    }

    @Test func walkerTerminationBounds() {
        func state(z: Double = 1.25, angle: Double = 0) -> [Double] {
            [0, z, angle] + [Double](repeating: 0, count: 15)
        }
        let tiny = 1e-9
        #expect(Walker2d.isHealthy(state(z: 0.8 + tiny)) && !Walker2d.isHealthy(state(z: 0.8)))
        #expect(Walker2d.isHealthy(state(z: 2.0 - tiny)) && !Walker2d.isHealthy(state(z: 2.0)))
        #expect(Walker2d.isHealthy(state(angle: 1 - tiny)) && !Walker2d.isHealthy(state(angle: 1)))
        #expect(Walker2d.isHealthy(state(angle: -1 + tiny)) && !Walker2d.isHealthy(state(angle: -1)))
    }

    /// A step from a fallen state terminates; a half cheetah never does, even upside down.
    @Test func stepsReportTermination() throws {
        let hopper = try Hopper()
        _ = hopper.reset(seed: 1)
        var fallen = hopper.state
        fallen[1] = 0.5  // torso far below 0.7
        try hopper.setState(fallen)
        #expect(try hopper.step(action: [0, 0, 0]).terminated)
        #expect(throws: EnvironmentError.needsReset(environment: "hopper")) { try hopper.step(action: [0, 0, 0]) }

        let cheetah = try HalfCheetah()
        _ = cheetah.reset(seed: 1)
        var flipped = cheetah.state
        flipped[2] = 3.1
        try cheetah.setState(flipped)
        for _ in 0..<20 { #expect(try cheetah.step(action: [Float](repeating: 1, count: 6)).terminated == false) }
    }

    @Test(arguments: ["hopper", "walker2d", "halfcheetah"])
    func shapesResetsAndTimeLimit(name: String) throws {
        let environment = try EnvironmentRegistry.make(name)
        let expected = ["hopper": (11, 3), "walker2d": (17, 6), "halfcheetah": (17, 6)][name]!
        let first = environment.reset(seed: 5)
        #expect(first.count == expected.0 && environment.actionSpace.dimension == expected.1)
        #expect(
            environment.actionSpace.lower.allSatisfy { $0 == -1 }
                && environment.actionSpace.upper.allSatisfy { $0 == 1 })
        #expect(environment.reset(seed: 5) == first, "a seeded reset repeats")
        #expect(environment.reset(seed: 6) != first)
        #expect(environment.maxEpisodeSteps == 1000)
    }

    @Test(arguments: ["hopper", "walker2d", "halfcheetah"])
    func badActionsAreRefusedAndNothingIsStepped(name: String) throws {
        let environment = try EnvironmentRegistry.make(name)
        _ = environment.reset(seed: 2)
        let before = environment.state
        let width = environment.actionSpace.dimension
        #expect(throws: EnvironmentError.wrongActionLength(environment: name, expected: width, got: width + 1)) {
            try environment.step(action: [Float](repeating: 0, count: width + 1))
        }
        var poisoned = [Float](repeating: 0, count: width)
        poisoned[width - 1] = .nan
        do {
            _ = try environment.step(action: poisoned)
            Issue.record("stepped with a NaN action")
        } catch let EnvironmentError.nonFiniteAction(_, index, value) {
            #expect(index == width - 1 && value.isNaN)
        }
        poisoned[width - 1] = .infinity
        #expect(throws: EnvironmentError.self) { try environment.step(action: poisoned) }
        #expect(environment.state == before && environment.elapsedSteps == 0)
    }

    @Test func badModelFilesGiveMuJoCosOwnMessage() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mjcf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        #expect(throws: EnvironmentError.badModel(file: "/nonexistent/hopper.xml", message: "the file does not exist"))
        {
            try Hopper(modelFile: "/nonexistent/hopper.xml")
        }
        let broken = directory.appendingPathComponent("broken.xml").path
        try Data("<mujoco><worldbody><body><geom type=\"capsule\"".utf8).write(to: URL(fileURLWithPath: broken))
        do {
            _ = try Hopper(modelFile: broken)
            Issue.record("loaded a broken model")
        } catch let EnvironmentError.badModel(file, message) {
            #expect(file == broken)
            #expect(message.contains("XML") || message.contains("Error"), "MuJoCo's text: \(message)")
        }
        let wrong = directory.appendingPathComponent("wrong.xml").path
        try Data("<mujoco><worldbody><geom type=\"sphere\" size=\"-1\"/></worldbody><bogus/></mujoco>".utf8).write(
            to: URL(fileURLWithPath: wrong))
        do {
            _ = try Hopper(modelFile: wrong)
            Issue.record("loaded an invalid model")
        } catch let EnvironmentError.badModel(_, message) {
            #expect(!message.isEmpty && message != "unknown error", "MuJoCo's text: \(message)")
        }
    }
}
