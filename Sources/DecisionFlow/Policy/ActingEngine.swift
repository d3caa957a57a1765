#if canImport(Glibc)
    import Glibc
#endif

/// Acting for N agents on one set of weights: every agent's history, and one decision per
/// active agent each step, in as few passes as the agents' phases allow.
///
/// The one place that chooses how an agent's step is computed, the same for N = 1 and N > 1:
/// - its window **grew** by a step since its last pass (the first K steps of an episode): an
///   append pass runs only the four tokens that changed, on the agent's carried state (flow:
///   its running Flow-Attention state; softmax: its cached keys and values);
/// - its window is new (its first step) or **slid** (every position moved, and with them
///   Flow-Attention's normalization): a window pass recomputes it, and keeps the state for the
///   next step only while the window can still grow.
///
/// A step runs one append pass over the agents that grew, and one window pass per window
/// length among the others (in lockstep, all agents share one phase, so one pass). A pass
/// over more rows than `ActingWorkspace.targetRows` runs in groups.
///
/// Input checks live in `DecisionPolicy`, the public face; the engine assumes valid calls.
final class ActingEngine {
    /// The phase of an agent between calls.
    enum Phase: Equatable {
        /// Not in an episode: never reset, or finished.
        case idle
        /// Reset or rewarded: its next step is an action.
        case ready
        /// It acted; the reward of that action comes next.
        case awaitingReward
    }

    let weights: ModelWeights
    let encoding: ContextEncoding
    let workspace: ActingWorkspace
    private(set) var histories: [PolicyHistory]
    private(set) var phases: [Phase]
    /// Each agent's window length after its last pass; 0 when nothing of it is carried.
    private var carriedWindow: [Int]
    /// Whether a growing window continues from the carried state (otherwise every step is a
    /// window pass: the reference arithmetic, for tests).
    var reusesActivations = true
    /// Tokens per agent its last decision ran through the model (4 when it continued its
    /// window, 3·T after a window pass), for tests.
    private(set) var lastTokenCounts: [Int]
    /// Passes the last step ran, for tests.
    private(set) var lastPassCount = 0
    /// Agents of the step being computed, by the pass they take.
    private var appending: [Int]
    private var windowed: [Int]

    init(
        weights: ModelWeights, encoding: ContextEncoding, agents: Int, threads: Int, flowChunkLength: Int? = nil,
        rowLimit: Int = ActingWorkspace.targetRows
    ) {
        let c = weights.configuration
        self.weights = weights
        self.encoding = encoding
        workspace = ActingWorkspace(
            configuration: c, agents: agents, threads: threads, flowChunkLength: flowChunkLength, rowLimit: rowLimit)
        // One history each, built apart: copies of one value would share its buffers until an
        // agent's first step wrote to them (a copy, so an allocation, inside a step).
        histories = (0..<agents).map { _ in
            PolicyHistory(contextLength: c.contextLength, encoding: encoding, actionDimension: c.actionDimension)
        }
        phases = Array(repeating: .idle, count: agents)
        carriedWindow = Array(repeating: 0, count: agents)
        lastTokenCounts = Array(repeating: 0, count: agents)
        appending = Array(repeating: 0, count: agents)
        windowed = Array(repeating: 0, count: agents)
    }

    var agents: Int { phases.count }

    /// Starts agent `agent`'s episode aiming for `targetReturn` (environment scale).
    func reset(agent: Int, targetReturn: Float) {
        histories[agent].reset(targetReturn: targetReturn)
        phases[agent] = .ready
        carriedWindow[agent] = 0
    }

    /// Ends agent `agent`'s episode; it takes no part in steps until reset.
    func finish(agent: Int) {
        phases[agent] = .idle
        carriedWindow[agent] = 0
    }

    /// Records the reward of agent `agent`'s last action (environment scale).
    func record(agent: Int, reward: Float) {
        histories[agent].record(reward: reward)
        phases[agent] = .ready
    }

    /// One decision for every ready agent: appends its observation (row `agent` of
    /// `observations`, S floats a row) to its history and writes its action to row `agent`
    /// of `actions` (A floats a row). Rows of other agents are neither read nor written.
    func step(observations: UnsafePointer<Float>, actions: UnsafeMutablePointer<Float>) {
        let c = weights.configuration
        let (S, A, K) = (c.stateDimension, c.actionDimension, c.contextLength)
        var appendCount = 0
        var windowCount = 0
        for agent in 0..<agents where phases[agent] == .ready {
            histories[agent].append(state: UnsafeBufferPointer(start: observations + agent * S, count: S).span)
            let count = histories[agent].count
            if reusesActivations && carriedWindow[agent] >= 1 && count == carriedWindow[agent] + 1 {
                appending[appendCount] = agent
                appendCount += 1
            } else {
                windowed[windowCount] = agent
                windowCount += 1
            }
        }
        lastPassCount = 0
        // Growing windows: one append pass (in groups of the workspace's capacity).
        var done = 0
        while done < appendCount {
            let group = min(appendCount - done, workspace.appendCapacity)
            workspace.tails.timesteps = 2
            for b in 0..<group {
                let agent = appending[done + b]
                workspace.sequenceAgents[b] = agent
                workspace.cachedRows[b] = WindowTokens.count(steps: histories[agent].count)
                histories[agent].write(into: workspace.tails, sequence: b, lastSteps: 2)
            }
            let output = workspace.appendPass(weights, count: group)
            for b in 0..<group {
                let agent = appending[done + b]
                deliver(output + b * A, agent: agent, into: actions, tokens: WindowTokens.appended.count, carried: true)
            }
            lastPassCount += 1
            done += group
        }
        // New and sliding windows: one window pass per window length, in agent order.
        while windowCount > 0 {
            let T = histories[windowed[0]].count
            let capacity = workspace.windowCapacity(timesteps: T)
            let keepsState = reusesActivations && T < K
            workspace.windows.timesteps = T
            var group = 0
            var left = 0
            for index in 0..<windowCount {
                let agent = windowed[index]
                if histories[agent].count == T && group < capacity {
                    workspace.sequenceAgents[group] = agent
                    histories[agent].write(into: workspace.windows, sequence: group)
                    group += 1
                } else {
                    windowed[left] = agent
                    left += 1
                }
            }
            let output = workspace.windowPass(weights, count: group, keepsState: keepsState)
            for b in 0..<group {
                let agent = workspace.sequenceAgents[b]
                deliver(output + b * A, agent: agent, into: actions, tokens: WindowTokens.count(steps: T), carried: keepsState)
            }
            lastPassCount += 1
            windowCount = left
        }
    }

    /// Hands agent `agent` its action from a pass's output row: into its history and into the
    /// caller's row, through tanh when the model has one. `carried`: the pass kept the state
    /// its window's next step continues from.
    private func deliver(
        _ row: UnsafeMutablePointer<Float>, agent: Int, into actions: UnsafeMutablePointer<Float>, tokens: Int,
        carried: Bool
    ) {
        let A = weights.configuration.actionDimension
        if weights.configuration.actionTanh {
            for j in 0..<A { row[j] = tanhf(row[j]) }
        }
        let out = actions + agent * A
        for j in 0..<A { out[j] = row[j] }
        histories[agent].setLastAction { row[$0] }
        carriedWindow[agent] = carried ? histories[agent].count : 0
        lastTokenCounts[agent] = tokens
        phases[agent] = .awaitingReward
    }
}
