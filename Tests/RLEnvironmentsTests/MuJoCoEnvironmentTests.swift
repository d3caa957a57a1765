import Foundation
@testable import RLEnvironments
import MallocCounter
import SeededRandom
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
        #expect(throws: EnvironmentError.needsReset(environment: "Hopper-v4")) { try hopper.step(action: [0, 0, 0]) }

        let cheetah = try HalfCheetah()
        _ = cheetah.reset(seed: 1)
        var flipped = cheetah.state
        flipped[2] = 3.1
        try cheetah.setState(flipped)
        for _ in 0..<20 { #expect(try cheetah.step(action: [Float](repeating: 1, count: 6)).terminated == false) }
    }

    static let widths = [
        "hopper": (11, 3), "walker2d": (17, 6), "halfcheetah": (17, 6), "ant": (111, 8), "hopper-v5": (11, 3),
        "walker2d-v5": (17, 6), "halfcheetah-v5": (17, 6), "ant-v5": (105, 8),
    ]

    @Test(arguments: widths.keys.sorted())
    func shapesResetsAndTimeLimit(name: String) throws {
        let environment = try EnvironmentCatalog.standard.make(name)
        let expected = Self.widths[name]!
        let first = environment.reset(seed: 5)
        #expect(first.count == expected.0 && environment.actionSpace.dimension == expected.1)
        #expect(
            environment.actionSpace.lower.allSatisfy { $0 == -1 }
                && environment.actionSpace.upper.allSatisfy { $0 == 1 })
        #expect(environment.reset(seed: 5) == first, "a seeded reset repeats")
        #expect(environment.reset(seed: 6) != first)
        #expect(environment.maxEpisodeSteps == 1000)
    }

    @Test(arguments: widths.keys.sorted())
    func badActionsAreRefusedAndNothingIsStepped(name: String) throws {
        let environment = try EnvironmentCatalog.standard.make(name)
        _ = environment.reset(seed: 2)
        let before = environment.state
        let width = environment.actionSpace.dimension
        let id = environment.name
        #expect(throws: EnvironmentError.wrongActionLength(environment: id, expected: width, got: width + 1)) {
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
        // An observation span of the wrong width: refused before anything is stepped or written.
        let S = environment.observationSpace.dimension
        for room in [S - 1, S + 1] {
            var observation = [Float](repeating: 7, count: room)
            var output = observation.mutableSpan
            let action = [Float](repeating: 0, count: width)
            #expect(throws: EnvironmentError.wrongObservationLength(environment: id, expected: S, got: room)) {
                try environment.step(action: action.span, observation: &output)
            }
            #expect(observation.allSatisfy { $0 == 7 })
        }
        #expect(environment.state == before && environment.elapsedSteps == 0)
    }

    /// The span form and the array form are one step: same observation, reward and flags.
    @Test(arguments: widths.keys.sorted())
    func spansAndArraysStepAlike(name: String) throws {
        let (viaSpans, viaArrays) = (try EnvironmentCatalog.standard.make(name), try EnvironmentCatalog.standard.make(name))
        var random = RandomGenerator(seed: 11)
        var observation = viaSpans.reset(seed: 3)
        #expect(viaArrays.reset(seed: 3) == observation)
        for _ in 0..<50 {
            let action = (0..<viaSpans.actionSpace.dimension).map { _ in random.nextFloat() * 2 - 1 }
            var output = observation.mutableSpan
            let outcome = try viaSpans.step(action: action.span, observation: &output)
            let result = try viaArrays.step(action: action)
            #expect(result.observation == observation)
            #expect(result.reward == outcome.reward && result.terminated == outcome.terminated)
            #expect(result.truncated == outcome.truncated)
            if outcome.isDone { break }
        }
    }

    /// A simulation's inner loop: stepping through spans allocates nothing, for every task.
    @Test(arguments: widths.keys.sorted())
    func aStepThroughSpansAllocatesNothing(name: String) throws {
        let environment = try EnvironmentCatalog.standard.make(name)
        var observation = environment.reset(seed: 4)
        let action = [Float](repeating: 0.1, count: environment.actionSpace.dimension)
        var output = observation.mutableSpan
        _ = try environment.step(action: action.span, observation: &output)
        malloc_counter_start()
        for _ in 0..<5 { _ = try environment.step(action: action.span, observation: &output) }
        let count = malloc_counter_stop()
        #expect(count == 0, "\(name): five steps made \(count) heap allocations")
    }

    /// What separates v5 from v4 (gymnasium's version notes): the healthy reward on the step
    /// that ends the episode, and Walker2d's right-foot friction.
    @Test func versionsDifferWhereGymnasiumSaysTheyDo() throws {
        // Each body put where it is unhealthy with its feet off the floor (no contact, so the
        // two versions' physics agree and only the reward can differ).
        let pairs: [(MuJoCoEnvironment, MuJoCoEnvironment, Double)] = [
            (try Hopper(), try Hopper(version: .v5), 1.8), (try Walker2d(), try Walker2d(version: .v5), 2.5),
        ]
        for (v4, v5, height) in pairs {
            _ = v4.reset(seed: 1)
            _ = v5.reset(seed: 1)
            var fallen = v4.state
            fallen[1] = height
            fallen[2] = 0.5  // tilted past hopper's 0.2
            try v4.setState(fallen)
            try v5.setState(fallen)
            let action = [Float](repeating: 0, count: v4.actionSpace.dimension)
            let (old, new) = (try v4.step(action: action), try v5.step(action: action))
            #expect(v4.contactCount == 0 && v5.contactCount == 0, "\(v5.name)")
            #expect(old.terminated && new.terminated && old.observation == new.observation, "\(v5.name)")
            #expect(abs((old.reward - new.reward) - 1) < 1e-12, "\(v5.name): \(old.reward) against \(new.reward)")
        }
        let (walker4, walker5) = (try Walker2d(), try Walker2d(version: .v5))
        let foot = try walker4.geom(named: "foot_geom")
        #expect(walker4.model.pointee.geom_friction[3 * foot] == 0.9)
        #expect(walker5.model.pointee.geom_friction[3 * foot] == 1.9)
        #expect(walker5.model.pointee.geom_friction[3 * foot + 1] == walker4.model.pointee.geom_friction[3 * foot + 1])
    }

    /// Ant's observation: 13 positions, 14 velocities, then contact forces clipped to ±1, of
    /// 14 bodies (v4) or 13 without the world (v5); healthy while 0.2 ≤ z ≤ 1.0.
    @Test func antObservesContactForcesAndItsHeight() throws {
        let (v4, v5) = (try Ant(), try Ant(version: .v5))
        var state = v4.state
        #expect(state.count == 15 + 14)
        #expect(Ant.isHealthy(state))
        state[2] = 0.2
        #expect(Ant.isHealthy(state))
        state[2] = 1.0
        #expect(Ant.isHealthy(state))
        state[2] = 1.0 + 1e-9
        #expect(!Ant.isHealthy(state))
        state[2] = 0.5
        state[20] = .nan
        #expect(!Ant.isHealthy(state))
        // Dropped on the floor, the legs touch it: forces appear, clipped, and v5's are v4's
        // without the world body's six.
        _ = v4.reset(seed: 1)
        _ = v5.reset(seed: 1)
        var touching = [Double](repeating: 0, count: 29)
        touching[2] = 0.55
        touching[3] = 1
        try v4.setState(touching)
        try v5.setState(touching)
        let action = [Float](repeating: 0.5, count: 8)
        var old = try v4.step(action: action)
        var new = try v5.step(action: action)
        while v4.contactCount == 0 && !old.isDone {
            old = try v4.step(action: action)
            new = try v5.step(action: action)
        }
        #expect(Array(old.observation[0..<27]) == Array(new.observation[0..<27]))
        #expect(Array(old.observation[33...]) == Array(new.observation[27...]))
        #expect(old.observation[27...].contains { $0 != 0 } && old.observation[27...].allSatisfy { abs($0) <= 1 })
    }

    /// A model that makes MuJoCo warn (a deprecated attribute) loads, and the warning goes to
    /// standard error: MuJoCo's default handler would append it to MUJOCO_LOG.TXT in the
    /// working directory.
    @Test func mujocoWarningsWriteNoFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mjcf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bundled = try String(contentsOfFile: MuJoCoEnvironment.modelDirectory + "/hopper.xml", encoding: .utf8)
        let warning = bundled.replacingOccurrences(of: "<compiler ", with: "<compiler settotalmass=\"3.5\" ")
        #expect(warning != bundled)
        let path = directory.appendingPathComponent("warns.xml").path
        try Data(warning.utf8).write(to: URL(fileURLWithPath: path))
        let log = FileManager.default.currentDirectoryPath + "/MUJOCO_LOG.TXT"
        let existed = FileManager.default.fileExists(atPath: log)
        let hopper = try Hopper(modelFile: path)
        #expect(abs(hopper.model.pointee.body_mass.advanced(by: 1).pointee - 3.5) < 10, "the model loaded")
        #expect(existed || !FileManager.default.fileExists(atPath: log), "MuJoCo wrote \(log)")
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
