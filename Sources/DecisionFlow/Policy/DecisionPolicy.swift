import Foundation

/// Why a policy call was refused. Nothing changes when one is thrown.
public enum PolicyError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The observation has the wrong number of values.
    case wrongObservationLength(expected: Int, got: Int)
    /// The observation holds NaN or infinity.
    case nonFiniteObservation(index: Int)
    /// `action(for:)` was called twice without `record(reward:)` in between.
    case rewardNotRecorded
    /// `action(for:)` was called before `reset(targetReturn:)`.
    case notReset
    /// The caller's buffer for the action has the wrong size.
    case wrongActionBuffer(expected: Int, got: Int)

    public var description: String {
        switch self {
        case .wrongObservationLength(let expected, let got):
            return "the observation has \(got) values, but the policy was trained on \(expected)"
        case .nonFiniteObservation(let index): return "observation component \(index) is NaN or infinite"
        case .rewardNotRecorded: return "record(reward:) the previous step's reward before asking for the next action"
        case .notReset: return "call reset(targetReturn:) before the first action of an episode"
        case .wrongActionBuffer(let expected, let got):
            return "the action buffer holds \(got) values; the policy outputs \(expected)"
        }
    }
}

/// A trained Decision Transformer, ready to be called every step of a Swift simulation.
///
/// ```swift
/// let policy = try DecisionPolicy(checkpointPath: "runs/demo/checkpoint.safetensors")
/// policy.reset(targetReturn: 3600)
/// var observation = simulator.reset()
/// while !done {
///     let action = try policy.action(for: observation)
///     (observation, reward, done) = simulator.step(action)
///     policy.record(reward: reward)
/// }
/// ```
///
/// It follows the reference evaluation protocol through the checkpoint's `ContextEncoding`
/// (the one training used): states normalized with the training data's statistics, a
/// return-to-go that starts at target / scale and drops by reward / scale after each step,
/// timesteps counting from 0, and the history cut to the last K steps with no padding.
///
/// Cost: each call runs the model on one sequence of up to 3K tokens. `action(for:into:)`
/// allocates nothing once warm; `action(for:)` allocates only the returned array.
///
/// Reuse: while an episode's window is still growing (its first K steps), a step only adds
/// three tokens (return-to-go, state, action placeholder) and replaces one (the previous
/// step's action placeholder, now the action taken). Attention is causal, so nothing about
/// the earlier tokens changes:
/// - With flow attention the policy keeps each layer's running Flow-Attention state
///   (`FlowRecurrence`) and runs only those four tokens: a decision costs the same at step
///   999 as at step 10, so a policy with K ≥ the episode length acts in constant time for a
///   whole episode.
/// - With softmax attention it keeps every earlier token's activations and recomputes the
///   last four tokens, whose attention still reads every earlier key.
///
/// Once the window is full it slides by a step each call: every token's position, and so
/// its Flow-Attention normalization n = i + 1, changes, and the whole window is recomputed
/// (in time linear in K for flow attention). It is recomputed too after `reset`, and
/// whenever the model was run by someone else since the policy's last call
/// (`DecisionTransformer.forwardCount` tells). With `reusesActivations` false it always
/// recomputes; the two agree to rounding (tested).
public final class DecisionPolicy {
    /// The model the policy runs (its configuration says what it expects).
    public let model: DecisionTransformer
    /// How observations, returns and timesteps become model input.
    public var encoding: ContextEncoding { history.encoding }
    private var history: PolicyHistory
    private let batch: TrajectoryBatch
    /// Flow attention: each layer's running state after the window's tokens but the last.
    private let recurrence: FlowRecurrence?
    /// Flow attention: the window's last two steps, for a pass that continues it.
    private let tail: TrajectoryBatch
    private var awaitingReward = false
    private var started = false
    /// The window length and the model's pass count after this policy's last forward pass.
    private var lastCount = 0
    private var lastForward = -1
    /// Whether to reuse the unchanged prefix's activations while the window grows.
    public var reusesActivations = true
    /// Tokens per sequence the last decision ran through the model (for tests: 4 when a
    /// flow policy continued its window, 3·K after a full recompute).
    private(set) var lastPassTokenCount = 0

    /// A policy from a model and the encoding it was trained with.
    ///
    /// - Precondition: `encoding.problem(for: model.configuration)` is nil (a checkpoint's
    ///   encoding is checked when it is read).
    public init(model: DecisionTransformer, encoding: ContextEncoding) {
        if let problem = encoding.problem(for: model.configuration) { preconditionFailure("the encoding: \(problem)") }
        self.model = model
        let c = model.configuration
        history = PolicyHistory(contextLength: c.contextLength, encoding: encoding, actionDimension: c.actionDimension)
        batch = TrajectoryBatch(
            capacity: 1, timesteps: c.contextLength, stateDimension: c.stateDimension,
            actionDimension: c.actionDimension)
        recurrence = c.attention == .flow ? FlowRecurrence(model: model, capacity: 1) : nil
        tail = TrajectoryBatch(
            capacity: 1, timesteps: min(2, c.contextLength), stateDimension: c.stateDimension,
            actionDimension: c.actionDimension)
    }

    /// Observation width the policy expects.
    public var observationDimension: Int { model.configuration.stateDimension }
    /// Action width the policy returns.
    public var actionDimension: Int { model.configuration.actionDimension }

    /// Starts an episode aiming for `targetReturn`, in the environment's own reward scale
    /// (e.g. 3600 for hopper).
    public func reset(targetReturn: Float) {
        history.reset(targetReturn: targetReturn)
        awaitingReward = false
        started = true
        lastCount = 0
    }

    /// The action for `observation`, written into `action` (actionDimension values). Once
    /// the policy is warm this allocates nothing: the call for a simulator's inner loop.
    ///
    /// ```swift
    /// var action = [Float](repeating: 0, count: policy.actionDimension)
    /// var output = action.mutableSpan
    /// try policy.action(for: observation.span, into: &output)
    /// ```
    public func action(for observation: Span<Float>, into action: inout MutableSpan<Float>) throws {
        let last = try decide(observation, actionCount: action.count)
        let predictions = model.actionPredictionBuffer
        for j in 0..<actionDimension { action[j] = predictions[last + j] }
    }

    /// `action(for:into:)` for callers holding raw buffers (C interop); allocates nothing.
    public func action(for observation: UnsafeBufferPointer<Float>, into action: UnsafeMutableBufferPointer<Float>)
        throws
    {
        var output = action.mutableSpan
        try self.action(for: observation.span, into: &output)
    }

    /// The action for `observation`, as a new array.
    public func action(for observation: [Float]) throws -> [Float] {
        var action = [Float](repeating: 0, count: actionDimension)
        var output = action.mutableSpan
        try self.action(for: observation.span, into: &output)
        return action
    }

    /// Checks the call, appends `observation` to the history, runs the model, and records
    /// the chosen action in the history. Returns where the action starts in the model's
    /// action predictions.
    private func decide(_ observation: Span<Float>, actionCount: Int) throws -> Int {
        guard started else { throw PolicyError.notReset }
        guard !awaitingReward else { throw PolicyError.rewardNotRecorded }
        guard observation.count == observationDimension else {
            throw PolicyError.wrongObservationLength(expected: observationDimension, got: observation.count)
        }
        guard actionCount == actionDimension else {
            throw PolicyError.wrongActionBuffer(expected: actionDimension, got: actionCount)
        }
        for j in 0..<observation.count where !observation[j].isFinite {
            throw PolicyError.nonFiniteObservation(index: j)
        }
        history.append(state: observation)
        // Reusable: the window grew by one step since our own last pass.
        let grew = history.count == lastCount + 1 && lastCount >= 1 && model.forwardCount == lastForward
        let last: Int
        if let recurrence, reusesActivations && grew {
            // The previous step's action token (token 2 of the last two steps) onward.
            tail.count = 1
            tail.timesteps = 2
            history.write(into: tail, sequence: 0, lastSteps: 2)
            model.forwardAppending(tail, firstToken: 2, recurrence: recurrence)
            last = actionDimension
            lastPassTokenCount = 4
        } else {
            batch.count = 1
            batch.timesteps = history.count
            history.write(into: batch, sequence: 0)
            if let recurrence, history.count < model.configuration.contextLength {
                // The window can still grow: keep the state for the next decision.
                model.forward(batch, recurrence: recurrence)
            } else if recurrence == nil && reusesActivations && grew {
                // Softmax: recompute from the previous step's action token (position 3·(count − 2) + 2).
                model.forward(batch, training: false, reuse: .inPlace(firstRow: 3 * history.count - 4))
            } else {
                // A full window slides at the next step, so nothing is kept: only the actions.
                model.forward(batch, training: false, reuse: .none, actionsOnly: true)
            }
            last = (history.count - 1) * actionDimension
            lastPassTokenCount = 3 * history.count
        }
        lastCount = history.count
        lastForward = model.forwardCount
        let predictions = model.actionPredictionBuffer
        history.setLastAction { predictions[last + $0] }
        awaitingReward = true
        return last
    }

    /// Records the reward the environment gave for the last action.
    public func record(reward: Float) {
        history.record(reward: reward)
        awaitingReward = false
    }
}
