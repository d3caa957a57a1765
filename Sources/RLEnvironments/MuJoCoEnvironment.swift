import CMuJoCo
import Foundation
import SeededRandom

/// A gym-style locomotion task on MuJoCo (Debian's libmujoco 2.2.2): owns one `mjModel` and
/// one `mjData`, freed when the environment goes away.
///
/// Each `step` writes the action to the controls, runs `frameSkip` physics steps, then asks
/// the task (the subclass) for the observation, reward and termination, exactly as gym's
/// `MujocoEnv.do_simulation` does. The base class is not used on its own.
public class MuJoCoEnvironment: Environment {
    public let name: String
    /// Unbounded, of the task's observation width.
    public let observationSpace: BoxSpace
    /// The actuators' control ranges.
    public let actionSpace: BoxSpace
    public let maxEpisodeSteps = 1000
    public private(set) var elapsedSteps = 0
    /// Physics steps per environment step.
    public let frameSkip: Int
    /// Velocities in the observation are clipped to ±this (infinity: unclipped).
    let velocityLimit: Double
    /// Reset adds U(−noise, noise) to qpos and qvel (the default `resetState`).
    let resetNoise: Double
    /// The model file this environment was loaded from.
    public let modelFile: String

    let model: UnsafeMutablePointer<mjModel>
    let data: UnsafeMutablePointer<mjData>
    /// Generalized positions and velocities of the model's initial state (`qpos0`, zeros).
    let initialPositions: [Double]
    var generator = RandomGenerator(seed: 0)
    var running = false

    /// Serializes model loading: MuJoCo 2.2's XML parser keeps global state.
    private static let loadLock = NSLock()

    /// Loads `modelFile`, or the bundled model `bundled` (in `modelDirectory`) when it is nil.
    init(
        name: String, modelFile: String?, bundled: String, frameSkip: Int, observationDimension: Int,
        velocityLimit: Double = .infinity, resetNoise: Double
    ) throws {
        let modelFile = modelFile ?? MuJoCoEnvironment.modelDirectory + "/" + bundled
        self.name = name
        self.modelFile = modelFile
        self.frameSkip = frameSkip
        self.velocityLimit = velocityLimit
        self.resetNoise = resetNoise
        guard FileManager.default.fileExists(atPath: modelFile) else {
            throw EnvironmentError.badModel(file: modelFile, message: "the file does not exist")
        }
        var error = [CChar](repeating: 0, count: 1000)
        MuJoCoEnvironment.loadLock.lock()
        let loaded = mj_loadXML(modelFile, nil, &error, Int32(error.count))
        MuJoCoEnvironment.loadLock.unlock()
        guard let loaded else {
            let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw EnvironmentError.badModel(file: modelFile, message: message.isEmpty ? "unknown error" : message)
        }
        guard let made = mj_makeData(loaded) else {
            mj_deleteModel(loaded)
            throw EnvironmentError.badModel(file: modelFile, message: "mj_makeData failed (out of memory?)")
        }
        model = loaded
        data = made
        let controls = Int(loaded.pointee.nu)
        actionSpace = BoxSpace(
            lower: (0..<controls).map { Float(loaded.pointee.actuator_ctrlrange[2 * $0]) },
            upper: (0..<controls).map { Float(loaded.pointee.actuator_ctrlrange[2 * $0 + 1]) })
        observationSpace = BoxSpace(dimension: observationDimension, bound: .infinity)
        initialPositions = (0..<Int(loaded.pointee.nq)).map { loaded.pointee.qpos0[$0] }
    }

    deinit {
        mj_deleteData(data)
        mj_deleteModel(model)
    }

    /// Generalized positions (nq).
    public var positions: [Double] { (0..<Int(model.pointee.nq)).map { data.pointee.qpos[$0] } }
    /// Generalized velocities (nv).
    public var velocities: [Double] { (0..<Int(model.pointee.nv)).map { data.pointee.qvel[$0] } }
    /// Contacts active after the last physics step.
    public var contactCount: Int { Int(data.pointee.ncon) }
    /// Seconds per environment step: the model's timestep times `frameSkip`.
    public var dt: Double { model.pointee.opt.timestep * Double(frameSkip) }

    /// qpos then qvel, as gym's `state_vector()`.
    public var state: [Double] { positions + velocities }

    /// Sets qpos (the first nq values) and qvel (the next nv), then recomputes the derived
    /// quantities (`mj_forward`), as gym's `set_state` does. The step count is kept.
    public func setState(_ state: [Double]) throws {
        let nq = Int(model.pointee.nq)
        let nv = Int(model.pointee.nv)
        guard state.count == nq + nv, state.allSatisfy(\.isFinite) else {
            throw EnvironmentError.badState(
                environment: name,
                problem: "expected \(nq) positions and \(nv) velocities, all finite; got \(state.count) values")
        }
        for i in 0..<nq { data.pointee.qpos[i] = state[i] }
        for i in 0..<nv { data.pointee.qvel[i] = state[nq + i] }
        mj_forward(model, data)
        running = true
    }

    public func reset(seed: UInt64?) -> [Float] {
        if let seed { generator = RandomGenerator(seed: seed) }
        mj_resetData(model, data)
        let (positions, velocities) = resetState()
        for (i, value) in positions.enumerated() { data.pointee.qpos[i] = value }
        for (i, value) in velocities.enumerated() { data.pointee.qvel[i] = value }
        mj_forward(model, data)
        elapsedSteps = 0
        running = true
        return observation()
    }

    public func step(action: [Float]) throws -> StepResult {
        try validate(action)
        guard running else { throw EnvironmentError.needsReset(environment: name) }
        let xBefore = data.pointee.qpos[0]
        for (i, value) in action.enumerated() { data.pointee.ctrl[i] = Double(value) }
        for _ in 0..<frameSkip { mj_step(model, data) }
        let xAfter = data.pointee.qpos[0]
        let controlCost = action.reduce(0.0) { $0 + Double($1) * Double($1) }
        let (reward, terminated) = outcome(forwardVelocity: (xAfter - xBefore) / dt, controlCost: controlCost)
        elapsedSteps += 1
        let truncated = elapsedSteps >= maxEpisodeSteps
        if terminated || truncated { running = false }
        return StepResult(observation: observation(), reward: reward, terminated: terminated, truncated: truncated)
    }

    // MARK: - The task (overridden by each environment)

    /// The observation gym's locomotion tasks share: qpos without the root's x position,
    /// then qvel clipped to ±`velocityLimit`.
    func observation() -> [Float] {
        positions.dropFirst().map { Float($0) } + velocities.map { Float(min(max($0, -velocityLimit), velocityLimit)) }
    }

    /// The initial qpos and qvel, each plus U(−resetNoise, resetNoise).
    func resetState() -> (positions: [Double], velocities: [Double]) {
        (
            uniformNoise(initialPositions, scale: resetNoise),
            uniformNoise([Double](repeating: 0, count: Int(model.pointee.nv)), scale: resetNoise)
        )
    }

    /// The reward and termination after a step, from Δx/dt and Σ action².
    func outcome(forwardVelocity: Double, controlCost: Double) -> (reward: Double, terminated: Bool) {
        preconditionFailure("\(type(of: self)) must override outcome(forwardVelocity:controlCost:)")
    }

    /// The directory of the bundled model files.
    public static var modelDirectory: String {
        Bundle.module.resourceURL?.appendingPathComponent("Models").path ?? "Models"
    }

    /// Uniform noise in [−scale, scale) added to each of `values`.
    func uniformNoise(_ values: [Double], scale: Double) -> [Double] {
        values.map { $0 + (Double(generator.nextFloat()) * 2 - 1) * scale }
    }
}

/// gym's upright tasks (hopper, walker2d): 4 physics steps per step, velocities clipped to
/// ±10, reset noise U(−0.005, 0.005) on qpos and qvel, reward Δx/dt + 1 − 0.001·‖a‖² (a
/// healthy reward of 1 every step), and the episode ends once the body is not healthy.
public class UprightLocomotion: MuJoCoEnvironment {
    /// The task's healthy test, on concat(qpos, qvel).
    private let healthy: ([Double]) -> Bool

    init(name: String, modelFile: String?, observationDimension: Int, healthy: @escaping ([Double]) -> Bool) throws {
        self.healthy = healthy
        try super.init(
            name: name, modelFile: modelFile, bundled: name + ".xml", frameSkip: 4, observationDimension: observationDimension,
            velocityLimit: 10, resetNoise: 5e-3)
    }

    override func outcome(forwardVelocity: Double, controlCost: Double) -> (reward: Double, terminated: Bool) {
        (forwardVelocity + 1 - 1e-3 * controlCost, !healthy(state))
    }
}

/// gym's `Hopper-v3` (gymnasium `Hopper-v4`): hop forward without falling.
///
/// Observation: qpos[1:] and clip(qvel, ±10) (11). Terminates unless every value of
/// (qpos, qvel)[2:] is finite and inside (−100, 100), the torso height qpos[1] > 0.7 and its
/// angle |qpos[2]| < 0.2. Reward and reset: `UprightLocomotion`'s.
public final class Hopper: UprightLocomotion {
    /// Loads `modelFile` (default: the bundled `hopper.xml`).
    public init(modelFile: String? = nil) throws {
        try super.init(name: "hopper", modelFile: modelFile, observationDimension: 11, healthy: Hopper.isHealthy)
    }

    /// gym's healthy test, on concat(qpos, qvel).
    public static func isHealthy(_ state: [Double]) -> Bool {
        let height = state[1]
        let angle = state[2]
        let bounded = state.dropFirst(2).allSatisfy { $0 > -100 && $0 < 100 }  // false for NaN too
        return bounded && height > 0.7 && angle > -0.2 && angle < 0.2
    }
}

/// gym's `Walker2d-v3` (gymnasium `Walker2d-v4`): walk forward on two legs.
///
/// Observation: qpos[1:] and clip(qvel, ±10) (17). Terminates unless the torso height is in
/// (0.8, 2.0) and its angle in (−1, 1). Reward and reset: `UprightLocomotion`'s.
public final class Walker2d: UprightLocomotion {
    /// Loads `modelFile` (default: the bundled `walker2d.xml`).
    public init(modelFile: String? = nil) throws {
        try super.init(name: "walker2d", modelFile: modelFile, observationDimension: 17, healthy: Walker2d.isHealthy)
    }

    /// gym's healthy test: 0.8 < qpos[1] < 2.0 and −1 < qpos[2] < 1.
    public static func isHealthy(_ state: [Double]) -> Bool {
        state[1] > 0.8 && state[1] < 2.0 && state[2] > -1 && state[2] < 1
    }
}

/// gym's `HalfCheetah-v3` (gymnasium `HalfCheetah-v4`): run forward; never terminates.
///
/// Observation: qpos[1:] and qvel, unclipped (17). Reward: Δx/dt − 0.1·‖a‖². Reset: qpos +=
/// U(−0.1, 0.1), qvel += 0.1·N(0, 1).
public final class HalfCheetah: MuJoCoEnvironment {
    /// Loads `modelFile` (default: the bundled `half_cheetah.xml`).
    public init(modelFile: String? = nil) throws {
        try super.init(
            name: "halfcheetah", modelFile: modelFile, bundled: "half_cheetah.xml", frameSkip: 5, observationDimension: 17,
            resetNoise: 0.1)
    }

    override func resetState() -> (positions: [Double], velocities: [Double]) {
        let positions = uniformNoise(initialPositions, scale: resetNoise)
        let velocities = (0..<Int(model.pointee.nv)).map { _ in 0.1 * Double(generator.nextGaussian()) }
        return (positions, velocities)
    }

    override func outcome(forwardVelocity: Double, controlCost: Double) -> (reward: Double, terminated: Bool) {
        (forwardVelocity - 0.1 * controlCost, false)
    }
}

extension MuJoCoEnvironment {
    /// The raw MuJoCo model and data, for the benchmark that times bare `mj_step` calls on this
    /// very model (`d4rl-run bench envs`). Not API: whatever runs through them bypasses the
    /// environment, which must be `reset` before it steps again.
    @_spi(Benchmarks) public var rawPhysics: (model: UnsafeMutablePointer<mjModel>, data: UnsafeMutablePointer<mjData>)
    {
        running = false
        return (model, data)
    }
}
