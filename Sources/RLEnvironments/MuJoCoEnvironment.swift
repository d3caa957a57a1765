import CMuJoCo
import Foundation
import SeededRandom

/// gymnasium's versions of the MuJoCo locomotion tasks (gymnasium 1.2.3's `*_v4.py` and
/// `*_v5.py`; FACTS.md).
public enum LocomotionVersion: String, Sendable, CaseIterable {
    /// gymnasium v4, which repeats gym's v3: the environments D4RL recorded and evaluates on.
    case v4
    /// gymnasium v5, which Minari's MuJoCo datasets were recorded on: the healthy reward is
    /// paid only while healthy (Hopper, Walker2d, Ant), Walker2d's feet both have friction 1.9,
    /// and Ant always pays the contact cost and observes 13 bodies' contact forces (105 wide).
    case v5
}

/// A gym-style locomotion task on MuJoCo 4.0.1: owns one `mjModel` and one `mjData`, freed
/// when the environment goes away.
///
/// Each `step` writes the action to the controls, runs `frameSkip` physics steps, then asks
/// the task (the subclass) for the reward and termination, exactly as gymnasium's
/// `MujocoEnv.do_simulation` does, and writes the observation. The base class is not used on
/// its own.
public class MuJoCoEnvironment: Environment {
    /// gymnasium's id, e.g. `Hopper-v4`.
    public let name: String
    /// Which of gymnasium's versions this is.
    public let version: LocomotionVersion
    /// Unbounded, of the task's observation width.
    public let observationSpace: BoxSpace
    /// The actuators' control ranges.
    public let actionSpace: BoxSpace
    public let maxEpisodeSteps = 1000
    public private(set) var elapsedSteps = 0
    /// Physics steps per environment step.
    public let frameSkip: Int
    /// The model file this environment was loaded from.
    public let modelFile: String

    /// The observation: qpos without its first `positionsSkipped` values (the root's
    /// position in the plane), then qvel clipped to ±`velocityLimit` (infinity: unclipped),
    /// then, from body `contactForcesFromBody` on when it is set, each body's 6 external
    /// contact forces (`cfrc_ext`) clipped to ±1.
    let positionsSkipped: Int
    let velocityLimit: Double
    let contactForcesFromBody: Int?
    /// Reset adds U(−noise, noise) to qpos and qvel (the default `resetState`).
    let resetNoise: Double

    let model: UnsafeMutablePointer<mjModel>
    let data: UnsafeMutablePointer<mjData>
    /// Generalized positions of the model's initial state (`qpos0`).
    let initialPositions: [Double]
    /// concat(qpos, qvel) for the healthy tests, which gymnasium writes on that vector
    /// (`state_vector()`): filled by `refreshedState()`, so a step allocates nothing.
    var stateScratch: [Double]
    var generator = RandomGenerator(seed: 0)
    var running = false

    /// Serializes model loading: MuJoCo's XML parser has kept global state in some versions.
    private static let loadLock = NSLock()

    /// MuJoCo's default log handler prints to standard output and appends to a file,
    /// MUJOCO_LOG.TXT, in the process's working directory: a library must not write files the
    /// user did not ask for, nor mix text into a program's output (`--json` included). Unless
    /// the program installed a handler of its own, warnings and errors go to standard error
    /// instead. Evaluated once, under `loadLock`, before the first model loads.
    private static let logToStandardError: Void = {
        let handler: mjfLogHandler = { message in
            guard let message, message.pointee.level >= Int32(mjLOG_WARNING.rawValue) else { return }
            let kind = message.pointee.level == Int32(mjLOG_WARNING.rawValue) ? "warning" : "error"
            var subject = message.pointee.subject
            let text = withUnsafeBytes(of: &subject) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let line = Array("MuJoCo \(kind): \(text)\n".utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        // `mju_setLogHandler` returns the active handler, MuJoCo's default included; setting
        // nil restores the default, so the default's address is what the next call returns.
        let active = mju_setLogHandler(handler)
        mju_setLogHandler(nil)
        let standard = mju_setLogHandler(handler)
        if let active, let standard,
            unsafeBitCast(active, to: UnsafeRawPointer.self) != unsafeBitCast(standard, to: UnsafeRawPointer.self)
        {
            mju_setLogHandler(active)  // the program's own: kept
        }
    }()

    /// Loads `modelFile`, or the bundled model `bundled` (in `modelDirectory`) when it is nil.
    init(
        name: String, version: LocomotionVersion, modelFile: String?, bundled: String, frameSkip: Int,
        observationDimension: Int, positionsSkipped: Int = 1, velocityLimit: Double = .infinity,
        contactForcesFromBody: Int? = nil, resetNoise: Double
    ) throws {
        let modelFile = modelFile ?? MuJoCoEnvironment.modelDirectory + "/" + bundled
        self.name = name
        self.version = version
        self.modelFile = modelFile
        self.frameSkip = frameSkip
        self.positionsSkipped = positionsSkipped
        self.velocityLimit = velocityLimit
        self.contactForcesFromBody = contactForcesFromBody
        self.resetNoise = resetNoise
        guard FileManager.default.fileExists(atPath: modelFile) else {
            throw EnvironmentError.badModel(file: modelFile, message: "the file does not exist")
        }
        var error = [CChar](repeating: 0, count: 1000)
        MuJoCoEnvironment.loadLock.lock()
        MuJoCoEnvironment.logToStandardError
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
        let (nq, nv, nbody) = (Int(loaded.pointee.nq), Int(loaded.pointee.nv), Int(loaded.pointee.nbody))
        // The observation's layout must fit the model: a user's model file may not.
        let forces = contactForcesFromBody.map { 6 * max(0, nbody - $0) } ?? 0
        guard nq >= positionsSkipped, nq - positionsSkipped + nv + forces == observationDimension else {
            mj_deleteData(made)
            mj_deleteModel(loaded)
            throw EnvironmentError.badModel(
                file: modelFile,
                message:
                    "\(name) observes \(observationDimension) values, but this model's \(nq) positions, \(nv) velocities and \(nbody) bodies give \(max(0, nq - positionsSkipped) + nv + forces)"
            )
        }
        let controls = Int(loaded.pointee.nu)
        actionSpace = BoxSpace(
            lower: (0..<controls).map { Float(loaded.pointee.actuator_ctrlrange[2 * $0]) },
            upper: (0..<controls).map { Float(loaded.pointee.actuator_ctrlrange[2 * $0 + 1]) })
        observationSpace = BoxSpace(dimension: observationDimension, bound: .infinity)
        initialPositions = (0..<nq).map { loaded.pointee.qpos0[$0] }
        stateScratch = [Double](repeating: 0, count: nq + nv)
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
    /// Whether each step ends with `mj_rnePostConstraint`, which fills the contact forces
    /// (`cfrc_ext`) the task observes or pays for; MuJoCo computes them only on request.
    public var computesContactForces: Bool { contactForcesFromBody != nil }

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
        var observation = [Float](repeating: 0, count: observationSpace.dimension)
        var output = observation.mutableSpan
        writeObservation(into: &output)
        return observation
    }

    public func step(action: Span<Float>, observation: inout MutableSpan<Float>) throws -> StepOutcome {
        try validate(action: action, observation: observation)
        guard running else { throw EnvironmentError.needsReset(environment: name) }
        let before = progressPosition()
        var controlCost = 0.0
        for i in action.indices {
            let value = Double(action[i])
            data.pointee.ctrl[i] = value
            controlCost += value * value
        }
        for _ in 0..<frameSkip { mj_step(model, data) }
        if computesContactForces { mj_rnePostConstraint(model, data) }
        let after = progressPosition()
        let (reward, terminated) = outcome(forwardVelocity: (after - before) / dt, controlCost: controlCost)
        elapsedSteps += 1
        let truncated = elapsedSteps >= maxEpisodeSteps
        if terminated || truncated { running = false }
        writeObservation(into: &observation)
        return StepOutcome(reward: reward, terminated: terminated, truncated: truncated)
    }

    /// Writes the observation of the current state (the layout under `positionsSkipped`).
    func writeObservation(into observation: inout MutableSpan<Float>) {
        let (nq, nv) = (Int(model.pointee.nq), Int(model.pointee.nv))
        var k = 0
        for i in positionsSkipped..<nq {
            observation[k] = Float(data.pointee.qpos[i])
            k += 1
        }
        for i in 0..<nv {
            observation[k] = Float(min(max(data.pointee.qvel[i], -velocityLimit), velocityLimit))
            k += 1
        }
        if let first = contactForcesFromBody {
            for i in (6 * first)..<(6 * Int(model.pointee.nbody)) {
                observation[k] = Float(min(max(data.pointee.cfrc_ext[i], -1), 1))
                k += 1
            }
        }
    }

    // MARK: - The task (overridden by each environment)

    /// The coordinate whose change over a step, divided by `dt`, is the forward velocity:
    /// the root's x position, qpos[0], for the planar tasks.
    func progressPosition() -> Double { data.pointee.qpos[0] }

    /// The initial qpos and qvel, each plus U(−resetNoise, resetNoise).
    func resetState() -> (positions: [Double], velocities: [Double]) {
        (
            uniformNoise(initialPositions, scale: resetNoise),
            uniformNoise([Double](repeating: 0, count: Int(model.pointee.nv)), scale: resetNoise)
        )
    }

    /// concat(qpos, qvel) of the current state, in `stateScratch` (for the tasks whose
    /// healthy test reads it; HalfCheetah's has none).
    func refreshedState() -> [Double] {
        let (nq, nv) = (Int(model.pointee.nq), Int(model.pointee.nv))
        for i in 0..<nq { stateScratch[i] = data.pointee.qpos[i] }
        for i in 0..<nv { stateScratch[nq + i] = data.pointee.qvel[i] }
        return stateScratch
    }

    /// The healthy reward: 1 every step in v4, and in v5 only while healthy (so the step that
    /// ends an episode earns 1 less).
    func healthyReward(isHealthy: Bool) -> Double { version == .v4 || isHealthy ? 1 : 0 }

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

    /// qpos += U(−resetNoise, resetNoise), qvel += resetNoise·N(0, 1): HalfCheetah's and Ant's
    /// reset.
    func uniformPositionsGaussianVelocities() -> (positions: [Double], velocities: [Double]) {
        let positions = uniformNoise(initialPositions, scale: resetNoise)
        let velocities = (0..<Int(model.pointee.nv)).map { _ in resetNoise * Double(generator.nextGaussian()) }
        return (positions, velocities)
    }

    /// The index of the geom named `name`, or an error naming the model file.
    func geom(named name: String) throws -> Int { try index(of: mjOBJ_GEOM, "geom", named: name) }

    /// The index of the body named `name`, or an error naming the model file.
    func body(named name: String) throws -> Int { try index(of: mjOBJ_BODY, "body", named: name) }

    /// The index of the model's object of `type` (called `noun` in the error) named `name`.
    private func index(of type: mjtObj, _ noun: String, named name: String) throws -> Int {
        let index = mj_name2id(model, Int32(type.rawValue), name)
        guard index >= 0 else {
            throw EnvironmentError.badModel(file: modelFile, message: "\(self.name) needs a \(noun) named \(name)")
        }
        return Int(index)
    }
}

/// gym's upright tasks (hopper, walker2d): 4 physics steps per step, velocities clipped to
/// ±10, reset noise U(−0.005, 0.005) on qpos and qvel, reward Δx/dt + healthy reward −
/// 0.001·‖a‖², and the episode ends once the body is not healthy. The healthy reward is 1
/// every step in v4, and 1 only while healthy in v5 (so a terminating step earns 1 less).
public class UprightLocomotion: MuJoCoEnvironment {
    /// The task's healthy test, on concat(qpos, qvel).
    private let healthy: ([Double]) -> Bool

    init(
        name: String, version: LocomotionVersion, modelFile: String?, bundled: String, observationDimension: Int,
        healthy: @escaping ([Double]) -> Bool
    ) throws {
        self.healthy = healthy
        try super.init(
            name: name, version: version, modelFile: modelFile, bundled: bundled, frameSkip: 4,
            observationDimension: observationDimension, velocityLimit: 10, resetNoise: 5e-3)
    }

    override func outcome(forwardVelocity: Double, controlCost: Double) -> (reward: Double, terminated: Bool) {
        let isHealthy = healthy(refreshedState())
        return (forwardVelocity + healthyReward(isHealthy: isHealthy) - 1e-3 * controlCost, !isHealthy)
    }
}

/// gymnasium's `Hopper-v4` (gym's v3, which D4RL used) or `Hopper-v5`: hop forward without
/// falling.
///
/// Observation: qpos[1:] and clip(qvel, ±10) (11). Terminates unless every value of
/// (qpos, qvel)[2:] is finite and inside (−100, 100), the torso height qpos[1] > 0.7 and its
/// angle |qpos[2]| < 0.2. Reward and reset: `UprightLocomotion`'s.
public final class Hopper: UprightLocomotion {
    /// Loads `modelFile` (default: the bundled `hopper.xml`, the same for both versions).
    public init(version: LocomotionVersion = .v4, modelFile: String? = nil) throws {
        try super.init(
            name: "Hopper-\(version.rawValue)", version: version, modelFile: modelFile, bundled: "hopper.xml",
            observationDimension: 11, healthy: Hopper.isHealthy)
    }

    /// gym's healthy test, on concat(qpos, qvel).
    public static func isHealthy(_ state: [Double]) -> Bool {
        let height = state[1]
        let angle = state[2]
        let bounded = state.dropFirst(2).allSatisfy { $0 > -100 && $0 < 100 }  // false for NaN too
        return bounded && height > 0.7 && angle > -0.2 && angle < 0.2
    }
}

/// gymnasium's `Walker2d-v4` (gym's v3, which D4RL used) or `Walker2d-v5`: walk forward on
/// two legs.
///
/// Observation: qpos[1:] and clip(qvel, ±10) (17). Terminates unless the torso height is in
/// (0.8, 2.0) and its angle in (−1, 1). Reward and reset: `UprightLocomotion`'s. The right
/// foot's friction is 0.9 in v4 and 1.9 (the left foot's) in v5: the bundled model has v4's,
/// and v5 sets it after loading.
public final class Walker2d: UprightLocomotion {
    /// Loads `modelFile` (default: the bundled `walker2d.xml`).
    public init(version: LocomotionVersion = .v4, modelFile: String? = nil) throws {
        try super.init(
            name: "Walker2d-\(version.rawValue)", version: version, modelFile: modelFile, bundled: "walker2d.xml",
            observationDimension: 17, healthy: Walker2d.isHealthy)
        if version == .v5 {
            // Only the sliding friction changes; the torsional and rolling values stay.
            model.pointee.geom_friction[3 * (try geom(named: "foot_geom"))] = 1.9
        }
    }

    /// gym's healthy test: 0.8 < qpos[1] < 2.0 and −1 < qpos[2] < 1.
    public static func isHealthy(_ state: [Double]) -> Bool {
        state[1] > 0.8 && state[1] < 2.0 && state[2] > -1 && state[2] < 1
    }
}

/// gymnasium's `HalfCheetah-v4` (gym's v3, which D4RL used) or `HalfCheetah-v5`, which
/// behaves the same: run forward; never terminates.
///
/// Observation: qpos[1:] and qvel, unclipped (17). Reward: Δx/dt − 0.1·‖a‖². Reset: qpos +=
/// U(−0.1, 0.1), qvel += 0.1·N(0, 1).
public final class HalfCheetah: MuJoCoEnvironment {
    /// Loads `modelFile` (default: the bundled `half_cheetah.xml`).
    public init(version: LocomotionVersion = .v4, modelFile: String? = nil) throws {
        try super.init(
            name: "HalfCheetah-\(version.rawValue)", version: version, modelFile: modelFile,
            bundled: "half_cheetah.xml", frameSkip: 5, observationDimension: 17, resetNoise: 0.1)
    }

    override func resetState() -> (positions: [Double], velocities: [Double]) {
        uniformPositionsGaussianVelocities()
    }

    override func outcome(forwardVelocity: Double, controlCost: Double) -> (reward: Double, terminated: Bool) {
        (forwardVelocity - 0.1 * controlCost, false)
    }
}

/// gymnasium's `Ant-v4` with `use_contact_forces=True` (gym's v3, D4RL's 111-wide Ant) or
/// `Ant-v5`: a four-legged body walking forward in 3D.
///
/// Each step runs 5 physics steps (timestep 0.01, RK4), then `mj_rnePostConstraint` for the
/// contact forces. Observation: qpos[2:] (13), qvel unclipped (14), then the external contact
/// forces of every body clipped to ±1: all 14 bodies in v4 (111), all but the world body in
/// v5 (105). Forward velocity: the torso frame's x (`xpos`, as gymnasium reads it after the
/// steps) over dt. Reward: forward velocity + healthy reward − 0.5·‖a‖² − 5e-4·‖clip(cfrc_ext,
/// ±1)‖² over all 14 bodies; the healthy reward is 1 every step in v4 and 1 only while
/// healthy in v5. Healthy while (qpos, qvel) is finite and 0.2 ≤ qpos[2] ≤ 1.0. Reset: qpos +=
/// U(−0.1, 0.1), qvel += 0.1·N(0, 1).
public final class Ant: MuJoCoEnvironment {
    /// The torso's body index (gymnasium's `main_body`).
    private var torso = 0

    /// Loads `modelFile` (default: the bundled `ant.xml`, the same for both versions).
    public init(version: LocomotionVersion = .v4, modelFile: String? = nil) throws {
        try super.init(
            name: "Ant-\(version.rawValue)", version: version, modelFile: modelFile, bundled: "ant.xml", frameSkip: 5,
            observationDimension: version == .v4 ? 111 : 105, positionsSkipped: 2,
            contactForcesFromBody: version == .v4 ? 0 : 1, resetNoise: 0.1)
        torso = try body(named: "torso")
    }

    /// gym's healthy test, on concat(qpos, qvel): finite, and 0.2 ≤ qpos[2] ≤ 1.0.
    public static func isHealthy(_ state: [Double]) -> Bool {
        state.allSatisfy(\.isFinite) && state[2] >= 0.2 && state[2] <= 1.0
    }

    override func progressPosition() -> Double { data.pointee.xpos[3 * torso] }

    override func resetState() -> (positions: [Double], velocities: [Double]) {
        uniformPositionsGaussianVelocities()
    }

    override func outcome(forwardVelocity: Double, controlCost: Double) -> (reward: Double, terminated: Bool) {
        var contactCost = 0.0
        for i in 0..<(6 * Int(model.pointee.nbody)) {
            let force = min(max(data.pointee.cfrc_ext[i], -1), 1)
            contactCost += force * force
        }
        let isHealthy = Ant.isHealthy(refreshedState())
        return (
            forwardVelocity + healthyReward(isHealthy: isHealthy) - 0.5 * controlCost - 5e-4 * contactCost, !isHealthy
        )
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
