import RealModule
import SeededRandom

/// gymnasium's `MountainCarContinuous-v0`: drive an under-powered car up a hill.
///
/// State (position, velocity), kept in Float: gymnasium stores it as a float32 array, and
/// NumPy's float32 scalar arithmetic rounds every operation to float32, so this does too.
/// Each step, with force = clip(a, ±1):
///   v ← clip(v + force·0.0015 − 0.0025·cos(3x), ±0.07);  x ← clip(x + v, −1.2, 0.6)
///   v ← 0 at the left wall when moving left
///   terminated when x ≥ 0.45 and v ≥ 0;  reward = 100·terminated − 0.1·a²
/// (the penalty uses the action as given, before clipping, as gymnasium does).
/// Truncated after 999 steps. Reset: x ~ U(−0.6, −0.4), v = 0.
public final class MountainCarContinuous: Environment {
    public let name = "MountainCarContinuous-v0"
    /// Position in [-1.2, 0.6] and velocity in [-0.07, 0.07].
    public let observationSpace = BoxSpace(lower: [-1.2, -0.07], upper: [0.6, 0.07])
    /// One force in [-1, 1].
    public let actionSpace = BoxSpace(dimension: 1, bound: 1)
    public let maxEpisodeSteps = 999
    public private(set) var elapsedSteps = 0

    static let minPosition: Float = -1.2
    static let maxPosition: Float = 0.6
    static let maxSpeed: Float = 0.07
    static let goalPosition: Float = 0.45
    static let power: Float = 0.0015

    private var position: Float = 0
    private var velocity: Float = 0
    private var generator = RandomGenerator(seed: 0)
    private var running = false

    /// A car at rest; call `reset(seed:)` to start an episode.
    public init() {}

    public func reset(seed: UInt64?) -> [Float] {
        if let seed { generator = RandomGenerator(seed: seed) }
        position = -0.6 + 0.2 * generator.nextFloat()
        velocity = 0
        elapsedSteps = 0
        running = true
        return [position, velocity]
    }

    public func step(action: Span<Float>, observation: inout MutableSpan<Float>) throws -> StepOutcome {
        try validate(action: action, observation: observation)
        guard running else { throw EnvironmentError.needsReset(environment: name) }
        let force = min(max(action[0], -1), 1)
        // Each operation as NumPy evaluates it: float32 operands, math.cos in Double.
        let gravity = Float(0.0025 * Double.cos(Double(3 * position)))
        velocity += force * Self.power - gravity
        velocity = min(max(velocity, -Self.maxSpeed), Self.maxSpeed)
        position += velocity
        position = min(max(position, Self.minPosition), Self.maxPosition)
        if position == Self.minPosition && velocity < 0 { velocity = 0 }
        let terminated = position >= Self.goalPosition && velocity >= 0
        var reward = terminated ? 100.0 : 0.0
        reward -= Double.pow(Double(action[0]), 2) * 0.1
        elapsedSteps += 1
        let truncated = elapsedSteps >= maxEpisodeSteps  // gymnasium's TimeLimit sets it even on a terminal step
        if terminated || truncated { running = false }
        observation[0] = position
        observation[1] = velocity
        return StepOutcome(reward: reward, terminated: terminated, truncated: truncated)
    }

    /// (position, velocity).
    public var state: [Double] { [Double(position), Double(velocity)] }

    public func setState(_ state: [Double]) throws {
        guard state.count == 2, state.allSatisfy(\.isFinite) else {
            throw EnvironmentError.badState(
                environment: name, problem: "expected 2 finite values (position, velocity), got \(state)")
        }
        (position, velocity) = (Float(state[0]), Float(state[1]))
        running = true
    }
}
