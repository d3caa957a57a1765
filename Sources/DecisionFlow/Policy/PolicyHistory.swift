/// One episode's context, kept as the reference's `get_action` protocol builds it: at step t
/// the states 0…t, the actions 0…t−1 then a zero placeholder for the action being chosen,
/// and the returns-to-go (rtg[0] = target / scale, rtg[t] = rtg[t−1] − r[t−1] / scale, or with
/// a discount γ the rule training used, rtg[t] = (rtg[t−1] − r[t−1] / scale) / γ), of which
/// only the last K steps are kept, with no padding.
///
/// It stores raw steps: states as observed, and the return-to-go in the model's scale,
/// where the reference keeps its running value. `encoding` turns them into model input in
/// `write`; the history does no arithmetic of its own beyond the running subtraction.
///
/// Fixed-size buffers: once the window is full, each new step shifts it by one, so nothing
/// is allocated per step.
public struct PolicyHistory: Sendable {
    /// The most timesteps a window holds, K.
    public let contextLength: Int
    /// How raw steps become model inputs.
    public let encoding: ContextEncoding
    /// Width of an action.
    public let actionDimension: Int
    /// Steps held (≤ contextLength).
    public private(set) var count = 0
    /// The episode step of the newest entry.
    public private(set) var step = -1
    private var states: [Float]
    private var actions: [Float]
    private var returnsToGo: [Float]
    /// The return-to-go the next appended step gets, in the model's scale.
    public private(set) var nextReturnToGo: Float = 0

    /// An empty history; call `reset(targetReturn:)` before the first step.
    public init(contextLength: Int, encoding: ContextEncoding, actionDimension: Int) {
        self.contextLength = contextLength
        self.encoding = encoding
        self.actionDimension = actionDimension
        states = [Float](repeating: 0, count: contextLength * encoding.stateDimension)
        actions = [Float](repeating: 0, count: contextLength * actionDimension)
        returnsToGo = [Float](repeating: 0, count: contextLength)
    }

    /// The state width.
    public var stateDimension: Int { encoding.stateDimension }

    /// Starts an episode that aims for `targetReturn`, in the environment's reward scale.
    public mutating func reset(targetReturn: Float) {
        count = 0
        step = -1
        nextReturnToGo = encoding.scaledReturn(targetReturn)
    }

    /// Appends the next step: its raw state, a zero action placeholder and the current
    /// return-to-go.
    public mutating func append(state: Span<Float>) {
        let S = stateDimension
        let A = actionDimension
        precondition(state.count == S, "a state of \(state.count) values; the encoding takes \(S)")
        if count == contextLength {  // drop the oldest step
            for i in 0..<((contextLength - 1) * S) { states[i] = states[i + S] }
            for i in 0..<((contextLength - 1) * A) { actions[i] = actions[i + A] }
            for i in 0..<(contextLength - 1) { returnsToGo[i] = returnsToGo[i + 1] }
            count -= 1
        }
        step += 1
        for j in 0..<S { states[count * S + j] = state[j] }
        for j in 0..<A { actions[count * A + j] = 0 }
        returnsToGo[count] = nextReturnToGo
        count += 1
    }

    /// Replaces the newest step's action placeholder with the chosen action.
    public mutating func setLastAction(_ action: (Int) -> Float) {
        for j in 0..<actionDimension { actions[(count - 1) * actionDimension + j] = action(j) }
    }

    /// Lowers the return-to-go by the reward just received, in the environment's scale, by
    /// the encoding's rule (`ContextEncoding.nextReturnToGo(after:from:)`).
    public mutating func record(reward: Float) {
        nextReturnToGo = encoding.nextReturnToGo(after: reward, from: nextReturnToGo)
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
        let skipped = count - lastSteps
        states.withUnsafeBufferPointer { states in
            actions.withUnsafeBufferPointer { actions in
                returnsToGo.withUnsafeBufferPointer { returnsToGo in
                    encoding.writeWindow(
                        into: batch, sequence: sequence,
                        states: UnsafeBufferPointer(rebasing: states[(skipped * S)..<(count * S)]),
                        actions: UnsafeBufferPointer(rebasing: actions[(skipped * A)..<(count * A)]),
                        scaledReturnsToGo: UnsafeBufferPointer(rebasing: returnsToGo[skipped..<count]),
                        firstTimestep: step - lastSteps + 1)
                }
            }
        }
    }
}
