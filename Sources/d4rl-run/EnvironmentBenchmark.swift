import ArgumentParser
import Foundation
@_spi(Benchmarks) import RLEnvironments
import CMuJoCo
import SeededRandom

/// `d4rl-run bench envs`: environment steps per second, and the Swift layer's cost.
struct EnvironmentBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "envs",
        abstract: "Environment steps per second with random actions (one thread), against bare mj_step.",
        discussion: """
            Each environment runs --steps steps of uniform random actions, resetting whenever \
            an episode ends. For the MuJoCo tasks the same actions and resets are then replayed \
            as bare mj_step calls on the same model (frame skip included), in the same run; the \
            overhead is the Swift layer's share: validation, observation, reward, termination.
            """
    )

    @Option(parsing: .unconditional, help: "Environment steps per measurement.")
    var steps = 20_000

    @Option(help: "Environments, comma-separated. Default: every environment of the catalog.")
    var envs = EnvironmentCatalog.standard.entries.map(\.name).joined(separator: ",")

    func validate() throws {
        try requireFlag("steps", steps, in: 1...10_000_000)
        for name in try listFlag("envs", envs) { _ = try environmentFlag("envs", name) }
    }

    func run() throws {
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; one thread; \(steps) steps each")
        print("environment      steps/s    physics steps/s   bare mj_step steps/s   Swift layer")
        for name in try listFlag("envs", envs) {
            let environment = try environmentFlag("envs", name).make()
            var random = RandomGenerator(seed: 9)
            let actions = (0..<steps).map { _ in
                (0..<environment.actionSpace.dimension).map { _ in random.nextFloat() * 2 - 1 }
            }
            var resets = Set<Int>()
            var observation = environment.reset(seed: 1)
            let clock = ContinuousClock()
            // The allocation-free step, into one observation buffer, as a simulation's loop runs.
            let elapsed = try clock.measure {
                var output = observation.mutableSpan
                for (index, action) in actions.enumerated()
                where try environment.step(action: action.span, observation: &output).isDone {
                    _ = environment.reset(seed: nil)
                    resets.insert(index)
                }
            }
            let seconds = elapsed / .seconds(1)
            let rate = Double(steps) / seconds
            var line = name.padding(toLength: 15, withPad: " ", startingAt: 0) + String(format: " %9.0f", rate)
            if let mujoco = environment as? MuJoCoEnvironment {
                let bare = Self.timeBarePhysics(mujoco, actions: actions, resets: resets)
                line += String(
                    format: "   %15.0f   %20.0f   %+9.1f%%", rate * Double(mujoco.frameSkip), Double(steps) / bare,
                    100 * (seconds - bare) / bare)
            }
            print(line)
        }
    }

    /// Replays an environment loop as bare MuJoCo calls on `environment`'s model: for each row
    /// of `actions` it writes the controls and runs `frameSkip` `mj_step`s, and after each
    /// step listed in `resets` it resets the data (`mj_resetData`, `mj_forward`), as the loop
    /// did. A task that observes contact forces also runs `mj_rnePostConstraint` after each
    /// step, as gymnasium does. Returns the seconds taken: `step` minus the Swift layer
    /// (validation, observation, reward, termination, reset noise), so the two compare directly.
    static func timeBarePhysics(_ environment: MuJoCoEnvironment, actions: [[Float]], resets: Set<Int>) -> Double {
        let contactForces = environment.computesContactForces
        let (model, data) = environment.rawPhysics
        mj_resetData(model, data)
        mj_forward(model, data)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for (index, action) in actions.enumerated() {
                for (i, value) in action.enumerated() { data.pointee.ctrl[i] = Double(value) }
                for _ in 0..<environment.frameSkip { mj_step(model, data) }
                if contactForces { mj_rnePostConstraint(model, data) }
                if resets.contains(index) {
                    mj_resetData(model, data)
                    mj_forward(model, data)
                }
            }
        }
        return elapsed / .seconds(1)
    }
}
