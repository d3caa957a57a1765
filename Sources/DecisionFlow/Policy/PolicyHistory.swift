/// One episode's context, kept as the reference's `get_action` protocol builds it: at step t
/// the states 0…t (normalized), the actions 0…t−1 then a zero placeholder for the action
/// being chosen, the returns-to-go (rtg[0] = target / scale, rtg[t] = rtg[t−1] − r[t−1] /
/// scale) and the timesteps 0…t, of which only the last K steps are kept, with no padding.
///
/// Fixed-size buffers: once the window is full, each new step shifts it by one, so nothing
/// is allocated per step.
public struct PolicyHistory: Sendable {
    public let contextLength: Int
    public let stateDimension: Int
    public let actionDimension: Int
    /// Steps held (≤ contextLength).
    public private(set) var count = 0
    /// The episode step of the newest entry.
    public private(set) var step = -1
    private var states: [Float]
    private var actions: [Float]
    private var returnsToGo: [Float]
    private var timesteps: [Int32]
    private var nextReturnToGo: Float = 0
    private let maxTimestep: Int32

    public init(contextLength: Int, stateDimension: Int, actionDimension: Int, maxEpisodeLength: Int) {
        self.contextLength = contextLength
        self.stateDimension = stateDimension
        self.actionDimension = actionDimension
        states = [Float](repeating: 0, count: contextLength * stateDimension)
        actions = [Float](repeating: 0, count: contextLength * actionDimension)
        returnsToGo = [Float](repeating: 0, count: contextLength)
        timesteps = [Int32](repeating: 0, count: contextLength)
        maxTimestep = Int32(maxEpisodeLength - 1)
    }

    /// Starts an episode that aims for `scaledTarget` (the target return / reward scale).
    public mutating func reset(scaledTarget: Float) {
        count = 0
        step = -1
        nextReturnToGo = scaledTarget
    }

    /// Appends the next step: its normalized state, a zero action placeholder, the current
    /// return-to-go and the timestep (clamped to the embedding table).
    public mutating func append(normalizedState: (Int) -> Float) {
        let S = stateDimension
        let A = actionDimension
        if count == contextLength {  // drop the oldest step
            for i in 0..<((contextLength - 1) * S) { states[i] = states[i + S] }
            for i in 0..<((contextLength - 1) * A) { actions[i] = actions[i + A] }
            for i in 0..<(contextLength - 1) {
                returnsToGo[i] = returnsToGo[i + 1]
                timesteps[i] = timesteps[i + 1]
            }
            count -= 1
        }
        step += 1
        for j in 0..<S { states[count * S + j] = normalizedState(j) }
        for j in 0..<A { actions[count * A + j] = 0 }
        returnsToGo[count] = nextReturnToGo
        timesteps[count] = min(Int32(step), maxTimestep)
        count += 1
    }

    /// Replaces the newest step's action placeholder with the chosen action.
    public mutating func setLastAction(_ action: (Int) -> Float) {
        for j in 0..<actionDimension { actions[(count - 1) * actionDimension + j] = action(j) }
    }

    /// Lowers the return-to-go by the reward just received (already divided by the scale).
    public mutating func record(scaledReward: Float) {
        nextReturnToGo -= scaledReward
    }

    /// Writes the window into sequence `sequence` of `batch`, whose `timesteps` must equal
    /// `count`.
    public func write(into batch: TrajectoryBatch, sequence: Int) {
        write(into: batch, sequence: sequence, lastSteps: count)
    }

    /// Writes the window's last `lastSteps` steps into sequence `sequence` of `batch`, whose
    /// `timesteps` must equal `lastSteps`: what a pass that continues a sequence needs.
    public func write(into batch: TrajectoryBatch, sequence: Int, lastSteps: Int) {
        precondition(
            lastSteps >= 1 && lastSteps <= count && batch.timesteps == lastSteps,
            "batch holds \(batch.timesteps) steps; writing \(lastSteps) of the history's \(count)")
        let S = stateDimension
        let A = actionDimension
        let base = sequence * lastSteps
        let skipped = count - lastSteps
        for i in 0..<(lastSteps * S) { batch.states[base * S + i] = states[skipped * S + i] }
        for i in 0..<(lastSteps * A) { batch.actions[base * A + i] = actions[skipped * A + i] }
        for i in 0..<lastSteps {
            batch.returnsToGo[base + i] = returnsToGo[skipped + i]
            batch.timestepIndices[base + i] = timesteps[skipped + i]
            batch.mask[base + i] = 1
        }
    }
}
