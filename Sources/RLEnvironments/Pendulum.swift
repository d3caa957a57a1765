import RealModule
import SeededRandom

/// gymnasium's `Pendulum-v1`: swing a pendulum up and hold it, with limited torque.
///
/// State (θ, θ̇) in Double, θ = 0 upright. Each step, with the torque u clipped to ±2:
///   reward = −(normalize(θ)² + 0.1·θ̇² + 0.001·u²)
///   θ̇ ← clip(θ̇ + (3g/(2l)·sin θ + 3/(m l²)·u)·dt, ±8);  θ ← θ + θ̇·dt
/// with g = 10, m = 1, l = 1, dt = 0.05. Observation (cos θ, sin θ, θ̇) as Float. Never
/// terminates; truncated after 200 steps. Reset: θ ~ U(−π, π), θ̇ ~ U(−1, 1).
public final class Pendulum: Environment {
    public let name = "Pendulum-v1"
    /// cos θ and sin θ in [-1, 1], θ̇ in [-8, 8].
    public let observationSpace = BoxSpace(lower: [-1, -1, -8], upper: [1, 1, 8])
    /// One torque in [-2, 2].
    public let actionSpace = BoxSpace(dimension: 1, bound: 2)
    public let maxEpisodeSteps = 200
    public private(set) var elapsedSteps = 0

    static let maxSpeed = 8.0
    static let maxTorque: Float = 2
    static let dt = 0.05
    static let gravity = 10.0
    static let mass = 1.0
    static let length = 1.0

    private var angle = 0.0
    private var angularVelocity = 0.0
    private var generator = RandomGenerator(seed: 0)
    private var running = false

    /// A pendulum at rest; call `reset(seed:)` to start an episode.
    public init() {}

    public func reset(seed: UInt64?) -> [Float] {
        if let seed { generator = RandomGenerator(seed: seed) }
        angle = (Double(generator.nextFloat()) * 2 - 1) * Double.pi
        angularVelocity = Double(generator.nextFloat()) * 2 - 1
        elapsedSteps = 0
        running = true
        var observation = [Float](repeating: 0, count: 3)
        var output = observation.mutableSpan
        writeObservation(into: &output)
        return observation
    }

    /// (cos θ, sin θ, θ̇).
    private func writeObservation(into observation: inout MutableSpan<Float>) {
        observation[0] = Float(Double.cos(angle))
        observation[1] = Float(Double.sin(angle))
        observation[2] = Float(angularVelocity)
    }

    public func step(action: Span<Float>, observation: inout MutableSpan<Float>) throws -> StepOutcome {
        try validate(action: action, observation: observation)
        guard running else { throw EnvironmentError.needsReset(environment: name) }
        let u = min(max(action[0], -Self.maxTorque), Self.maxTorque)
        // gymnasium computes the torque terms in float32 (NumPy scalar arithmetic).
        let normalized = (angle + .pi).truncatingRemainder(dividingBy: 2 * .pi)
        let wrapped = (normalized < 0 ? normalized + 2 * .pi : normalized) - .pi
        let cost = wrapped * wrapped + 0.1 * angularVelocity * angularVelocity + Double(0.001 * (u * u))
        let torqueTerm = Double(Float(3.0 / (Self.mass * Self.length * Self.length)) * u)
        var newVelocity =
            angularVelocity
            + (3 * Self.gravity / (2 * Self.length) * Double.sin(angle) + torqueTerm) * Self.dt
        newVelocity = min(max(newVelocity, -Self.maxSpeed), Self.maxSpeed)
        angle += newVelocity * Self.dt
        angularVelocity = newVelocity
        elapsedSteps += 1
        let truncated = elapsedSteps >= maxEpisodeSteps
        if truncated { running = false }
        writeObservation(into: &observation)
        return StepOutcome(reward: -cost, terminated: false, truncated: truncated)
    }

    /// (θ, θ̇).
    public var state: [Double] { [angle, angularVelocity] }

    public func setState(_ state: [Double]) throws {
        guard state.count == 2, state.allSatisfy(\.isFinite) else {
            throw EnvironmentError.badState(environment: name, problem: "expected 2 finite values (θ, θ̇), got \(state)")
        }
        (angle, angularVelocity) = (state[0], state[1])
        running = true
    }
}
