import Foundation

/// Why a policy call was refused. Nothing changes when one is thrown: no agent's history,
/// phase or carried state.
public enum PolicyError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The observation has the wrong number of values (one agent's, or all agents' rows).
    case wrongObservationLength(expected: Int, got: Int)
    /// Agent `agent`'s observation holds NaN or infinity at component `index`, or a value
    /// that overflows once normalized.
    case nonFiniteObservation(agent: Int = 0, index: Int)
    /// An action was asked for while an agent still awaits the reward of its last one.
    case rewardNotRecorded
    /// An action was asked for with no agent in an episode (`reset` starts one).
    case notReset
    /// The caller's buffer for the actions has the wrong size.
    case wrongActionBuffer(expected: Int, got: Int)
    /// An agent index outside the policy's agents.
    case agentOutOfRange(agent: Int, agents: Int)
    /// The rewards have the wrong count: one per agent.
    case wrongRewardCount(expected: Int, got: Int)
    /// Agent `agent`'s reward is NaN or infinite, or would make its return-to-go overflow.
    case nonFiniteReward(agent: Int = 0)
    /// A target return that is NaN or infinite, or overflows once scaled.
    case nonFiniteTarget(agent: Int = 0)

    public var description: String {
        switch self {
        case .wrongObservationLength(let expected, let got):
            return "the observations hold \(got) values, but the policy takes \(expected) (state width × agents)"
        case .nonFiniteObservation(let agent, let index):
            return "agent \(agent)'s observation component \(index) is NaN or infinite, or too large to normalize"
        case .rewardNotRecorded:
            return "record the reward of the last action (record(reward:) or record(rewards:)) before asking for the next"
        case .notReset: return "no agent is in an episode: call reset(targetReturn:) or reset(agent:targetReturn:) first"
        case .wrongActionBuffer(let expected, let got):
            return "the action buffer holds \(got) values; the policy writes \(expected) (action width × agents)"
        case .agentOutOfRange(let agent, let agents):
            return "agent \(agent) does not exist: the policy acts for agents 0..<\(agents)"
        case .wrongRewardCount(let expected, let got):
            return "\(got) rewards given; the policy has \(expected) agents (one reward each, ignored for agents that did not act)"
        case .nonFiniteReward(let agent):
            return "agent \(agent)'s reward is NaN or infinite, or would make its return-to-go overflow; it was not recorded"
        case .nonFiniteTarget(let agent):
            return "agent \(agent)'s target return is NaN or infinite, or too large for the model's reward scale"
        }
    }
}

/// A trained Decision Transformer, ready to be called every step of a Swift simulation, for
/// one agent or many.
///
/// One agent:
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
/// Many agents in one simulation loop, one call per step for all of them:
/// ```swift
/// let policy = try DecisionPolicy(checkpointPath: path, agents: 100)
/// for agent in 0..<100 { try policy.reset(agent: agent, targetReturn: 3600) }
/// var actions = [Float](repeating: 0, count: 100 * policy.actionDimension)
/// while policy.activeAgentCount > 0 {
///     var output = actions.mutableSpan
///     try policy.act(observations: observations.span, into: &output)  // rows of active agents
///     (observations, rewards, done) = crowd.step(actions)
///     try policy.record(rewards: rewards.span)
///     for agent in 0..<100 where done[agent] { try policy.finish(agent: agent) }
/// }
/// ```
/// Each agent has its own history, target return and episode; it is reset or finished on
/// its own, and agents whose episodes are at different steps act in the same call.
///
/// It follows the reference evaluation protocol through the checkpoint's `ContextEncoding`
/// (the one training used): states normalized with the training data's statistics, a
/// return-to-go that starts at target / scale and drops by reward / scale after each step
/// (by the training rule when the run discounted), timesteps counting from 0, and the
/// history cut to the last K steps with no padding.
///
/// Cost: one batched pass per step over the agents in the same phase (`ActingEngine`):
/// - while an agent's window is still growing (its first K steps), a step only adds three
///   tokens (return-to-go, state, action placeholder) and replaces one (the previous action
///   placeholder, now the action taken). Attention is causal, so the earlier tokens do not
///   change: flow attention continues each agent's running Flow-Attention state, so a
///   decision costs the same at step 999 as at step 10; softmax attention reuses each agent's
///   cached keys and values and computes only the four new queries.
/// - once the window is full it slides by a step each call: every token's position, and so
///   its Flow-Attention normalization n = i + 1, changes, and the window is recomputed (in time
///   linear in K for flow attention).
///
/// With `reusesActivations` false every step recomputes whole windows; the two agree to
/// rounding (tested). The calls that take spans or raw buffers allocate nothing once warm,
/// for any number of agents.
///
/// Weights: the policy reads `weights` at every step and shares them with whoever else holds
/// them (a training run's model, other policies), without copying. Change them between
/// episodes: state carried from earlier steps was computed with the old values.
public final class DecisionPolicy {
    /// The weights the policy acts with.
    public var weights: ModelWeights { engine.weights }
    /// The model's shape.
    public var configuration: ModelConfiguration { engine.weights.configuration }
    /// How observations, returns and timesteps become model input.
    public var encoding: ContextEncoding { engine.encoding }
    /// The agents the policy acts for.
    public var agents: Int { engine.agents }
    let engine: ActingEngine
    /// What a one-agent call that cannot throw refused (a target or reward that is not
    /// finite): the next action throws it, until a valid reset or reward replaces it.
    private var pendingRefusal: [PolicyError?]

    /// Whether growing windows continue from each agent's carried state (the default);
    /// false recomputes every window from scratch, for comparison.
    public var reusesActivations: Bool {
        get { engine.reusesActivations }
        set { engine.reusesActivations = newValue }
    }

    /// A policy acting for `agents` agents with `weights`, shared without copying.
    ///
    /// - Parameters:
    ///   - weights: the trained weights.
    ///   - encoding: the encoding training used (a checkpoint's).
    ///   - agents: how many agents act through the policy (at least 1).
    ///   - threads: worker threads for each step's passes.
    ///   - flowChunkLength: the chunk length of causal Flow-Attention (default: the model's).
    /// - Precondition: `encoding.problem(for: weights.configuration)` is nil (a checkpoint's
    ///   encoding is checked when it is read); `agents` ≥ 1; `flowChunkLength`, when given, ≥ 1;
    ///   the policy's memory (`ModelConfiguration.actingBytes(agents:threads:)`) can be
    ///   counted. `DecisionPolicy(checkpoint:source:agents:threads:)` checks all of it and
    ///   throws instead.
    public convenience init(
        weights: ModelWeights, encoding: ContextEncoding, agents: Int = 1, threads: Int = 1, flowChunkLength: Int? = nil
    ) {
        self.init(
            weights: weights, encoding: encoding, agents: agents, threads: threads, flowChunkLength: flowChunkLength,
            rowLimit: ActingWorkspace.targetRows)
    }

    /// `init(weights:encoding:agents:threads:flowChunkLength:)` with passes split into groups
    /// of about `rowLimit` token rows (tests make it small to exercise the groups).
    init(
        weights: ModelWeights, encoding: ContextEncoding, agents: Int, threads: Int, flowChunkLength: Int?,
        rowLimit: Int
    ) {
        if let problem = encoding.problem(for: weights.configuration) {
            preconditionFailure("the encoding: \(problem)")
        }
        precondition(agents >= 1, "a policy acts for at least one agent")
        precondition(flowChunkLength.map { $0 >= 1 } ?? true, "a Flow-Attention chunk holds at least one token")
        precondition(
            weights.configuration.actingBytes(agents: agents, threads: max(1, threads)) != nil,
            "a policy for \(agents) agents would need more memory than can be counted")
        engine = ActingEngine(
            weights: weights, encoding: encoding, agents: agents, threads: threads, flowChunkLength: flowChunkLength,
            rowLimit: rowLimit)
        pendingRefusal = Array(repeating: nil, count: agents)
    }

    /// A one-agent policy on `model`'s weights (shared, not copied), with its thread count
    /// and Flow-Attention chunk length.
    public convenience init(model: DecisionTransformer, encoding: ContextEncoding) {
        self.init(
            weights: model.weights, encoding: encoding, agents: 1, threads: model.work.threadCount,
            flowChunkLength: model.flowChunkLength)
    }

    /// Observation width the policy expects, per agent.
    public var observationDimension: Int { configuration.stateDimension }
    /// Action width the policy returns, per agent.
    public var actionDimension: Int { configuration.actionDimension }

    // MARK: - One agent

    /// Starts agent 0's episode aiming for `targetReturn`, in the environment's own reward
    /// scale (e.g. 3600 for hopper). A target that is not finite is refused: the next action
    /// throws `PolicyError.nonFiniteTarget` until a valid reset.
    public func reset(targetReturn: Float) {
        do { try reset(agent: 0, targetReturn: targetReturn) } catch { pendingRefusal[0] = error }
    }

    /// The action for `observation`, written into `action` (actionDimension values), for a
    /// one-agent policy. Once the policy is warm this allocates nothing: the call for a
    /// simulator's inner loop.
    ///
    /// ```swift
    /// var action = [Float](repeating: 0, count: policy.actionDimension)
    /// var output = action.mutableSpan
    /// try policy.action(for: observation.span, into: &output)
    /// ```
    public func action(for observation: Span<Float>, into action: inout MutableSpan<Float>) throws(PolicyError) {
        try act(observations: observation, into: &action)
    }

    /// `action(for:into:)` for callers holding raw buffers (C interop); allocates nothing.
    public func action(for observation: UnsafeBufferPointer<Float>, into action: UnsafeMutableBufferPointer<Float>)
        throws(PolicyError)
    {
        var output = action.mutableSpan
        try self.action(for: observation.span, into: &output)
    }

    /// The action for `observation`, as a new array.
    public func action(for observation: [Float]) throws(PolicyError) -> [Float] {
        var action = [Float](repeating: 0, count: actionDimension)
        var output = action.mutableSpan
        try self.action(for: observation.span, into: &output)
        return action
    }

    /// Records the reward the environment gave for agent 0's last action. A reward that is
    /// not finite is not recorded: the next action throws `PolicyError.nonFiniteReward`
    /// until a finite one is.
    public func record(reward: Float) {
        guard engine.phases[0] == .awaitingReward else { return }
        guard recordable(reward, agent: 0) else {
            if pendingRefusal[0] == nil { pendingRefusal[0] = .nonFiniteReward(agent: 0) }
            return
        }
        clearRefusedReward(agent: 0)
        engine.record(agent: 0, reward: reward)
    }

    // MARK: - Many agents

    /// Starts agent `agent`'s episode aiming for `targetReturn` (environment scale), whatever
    /// it was doing: its history empties and its next step begins a new window.
    public func reset(agent: Int, targetReturn: Float) throws(PolicyError) {
        try check(agent: agent)
        guard targetReturn.isFinite, encoding.scaledReturn(targetReturn).isFinite else {
            throw .nonFiniteTarget(agent: agent)
        }
        pendingRefusal[agent] = nil
        engine.reset(agent: agent, targetReturn: targetReturn)
    }

    /// Ends agent `agent`'s episode (it reached a terminal state, or its simulation left it):
    /// it takes no part in `act` until it is reset. Its last reward need not be recorded.
    public func finish(agent: Int) throws(PolicyError) {
        try check(agent: agent)
        pendingRefusal[agent] = nil
        engine.finish(agent: agent)
    }

    /// Whether agent `agent` is in an episode (reset and not finished).
    public func isActive(agent: Int) throws(PolicyError) -> Bool {
        try check(agent: agent)
        return engine.phases[agent] != .idle
    }

    /// The agents in an episode.
    public var activeAgentCount: Int { engine.phases.reduce(0) { $0 + ($1 == .idle ? 0 : 1) } }

    /// One action for every agent in an episode, all in one step.
    ///
    /// - Parameters:
    ///   - observations: agents × observationDimension values, row `agent` for agent `agent`.
    ///     Rows of agents not in an episode are not read (they may hold anything).
    ///   - actions: agents × actionDimension values; row `agent` receives agent `agent`'s action.
    ///     Rows of agents not in an episode are left as they are.
    /// - Throws: `PolicyError`, before anything changes, when the spans have the wrong size,
    ///   a one-agent call refused a target or reward that is still not replaced
    ///   (`reset(targetReturn:)`, `record(reward:)`), an active agent's observation is not
    ///   finite, an active agent still awaits its reward, or no agent is in an episode.
    public func act(observations: Span<Float>, into actions: inout MutableSpan<Float>) throws(PolicyError) {
        let (S, A) = (observationDimension, actionDimension)
        guard observations.count == agents * S else {
            throw .wrongObservationLength(expected: agents * S, got: observations.count)
        }
        guard actions.count == agents * A else { throw .wrongActionBuffer(expected: agents * A, got: actions.count) }
        for agent in 0..<agents { if let refusal = pendingRefusal[agent] { throw refusal } }
        var active = false
        for agent in 0..<agents where engine.phases[agent] != .idle {
            active = true
            if engine.phases[agent] == .awaitingReward { throw .rewardNotRecorded }
            for j in 0..<S where !encoding.normalized(observations[agent * S + j], feature: j).isFinite {
                throw .nonFiniteObservation(agent: agent, index: j)
            }
        }
        guard active else { throw .notReset }
        observations.withUnsafeBufferPointer { input in
            actions.withUnsafeMutableBufferPointer { output in
                engine.step(observations: input.baseAddress!, actions: output.baseAddress!)
            }
        }
    }

    /// Records the rewards of the agents' last actions, one per agent (environment scale).
    /// Entries of agents that did not act (not in an episode) are not read.
    ///
    /// - Throws: `PolicyError`, before any reward is recorded, when the count is wrong or a
    ///   reward of an agent that acted is not finite.
    public func record(rewards: Span<Float>) throws(PolicyError) {
        guard rewards.count == agents else { throw .wrongRewardCount(expected: agents, got: rewards.count) }
        for agent in 0..<agents where engine.phases[agent] == .awaitingReward && !recordable(rewards[agent], agent: agent) {
            throw .nonFiniteReward(agent: agent)
        }
        for agent in 0..<agents where engine.phases[agent] == .awaitingReward {
            clearRefusedReward(agent: agent)
            engine.record(agent: agent, reward: rewards[agent])
        }
    }

    /// Tokens agent 0's last decision ran through the model (4 when it continued its window,
    /// 3·T after a window pass), for tests.
    var lastPassTokenCount: Int { engine.lastTokenCounts[0] }

    /// Whether `reward` is finite and leaves agent `agent`'s return-to-go finite.
    private func recordable(_ reward: Float, agent: Int) -> Bool {
        reward.isFinite
            && encoding.nextReturnToGo(after: reward, from: engine.histories[agent].nextReturnToGo).isFinite
    }

    /// A valid reward replaces a refused one; a refused target stays until a valid reset.
    private func clearRefusedReward(agent: Int) {
        if case .nonFiniteReward = pendingRefusal[agent] { pendingRefusal[agent] = nil }
    }

    private func check(agent: Int) throws(PolicyError) {
        guard agent >= 0 && agent < agents else { throw .agentOutOfRange(agent: agent, agents: agents) }
    }
}
