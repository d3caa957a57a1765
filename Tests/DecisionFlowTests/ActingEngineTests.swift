import Foundation
import TestSupport
import Testing

@testable import DecisionFlow
@testable import DecisionFlowCheckpoints

/// The acting engine: every reference fixture through its two passes, many agents equal to
/// as many one-agent policies, and bad calls that change nothing.
@Suite struct ActingEngineTests {
    static let atol = 1e-5
    static let rtol = 1e-4

    /// Each fixture's action predictions, through the engine: for every sequence, a window
    /// pass over its first t + 1 real steps gives step t's action; and a window pass over the first
    /// step followed by append passes, one step at a time, gives each step's action from the
    /// carried state (flow) or the cached keys and values (softmax).
    @Test(arguments: ["dt_flow_small", "dt_softmax_small", "dt_flow_mid", "dt_flow_long"])
    func everyFixtureThroughTheEngine(name: String) throws {
        let contents = try ReferenceFixtures.load(name)
        let (model, batch) = try ReferenceFixtures.modelAndBatch(contents, name: name)
        let c = model.configuration
        let (S, A) = (c.stateDimension, c.actionDimension)
        let expected = try #require(contents.tensors["output/action_preds"]).values
        let T = batch.timesteps
        let engine = ActingEngine(weights: model.weights, encoding: .identity(for: c), agents: 1, threads: 2)
        let w = engine.workspace
        var checkedSteps = 0
        for b in 0..<batch.count {
            let real = (0..<T).filter { batch.mask[b * T + $0] > 0 }
            guard let first = real.first else { continue }
            try #require(real == Array(first..<(first + real.count)), "\(name) sequence \(b): real steps are contiguous")
            /// Copies real steps `steps` of sequence b into sequence 0 of `target`.
            func fill(_ target: TrajectoryBatch, steps: Range<Int>) {
                target.timesteps = steps.count
                for (row, t) in steps.enumerated() {
                    let source = b * T + real[t]
                    for j in 0..<S { target.states[row * S + j] = batch.states[source * S + j] }
                    for j in 0..<A { target.actions[row * A + j] = batch.actions[source * A + j] }
                    target.returnsToGo[row] = batch.returnsToGo[source]
                    target.timestepIndices[row] = batch.timestepIndices[source]
                    target.mask[row] = 1
                }
            }
            func reference(_ t: Int) -> [Float] {
                let row = b * T + real[t]
                return Array(expected[(row * A)..<((row + 1) * A)])
            }
            func activated(_ output: UnsafeMutablePointer<Float>) -> [Float] {
                (0..<A).map { c.actionTanh ? tanhf(output[$0]) : output[$0] }
            }
            w.sequenceAgents[0] = 0
            // A window pass gives its last step's action: one pass per prefix (a sample of them
            // in long sequences).
            for t in stride(from: real.count - 1, through: 0, by: -max(1, real.count / 40)) {
                fill(w.windows, steps: 0..<(t + 1))
                let window = w.windowPass(model.weights, count: 1, keepsState: false)
                expectClose(activated(window), reference(t), atol: Self.atol, rtol: Self.rtol, "\(name) b\(b) window t\(t)")
            }
            fill(w.windows, steps: 0..<1)
            let start = w.windowPass(model.weights, count: 1, keepsState: true)
            expectClose(activated(start), reference(0), atol: Self.atol, rtol: Self.rtol, "\(name) b\(b) start")
            for t in 1..<real.count {
                fill(w.tails, steps: (t - 1)..<(t + 1))
                w.cachedRows[0] = 3 * (t + 1)
                let next = w.appendPass(model.weights, count: 1)
                expectClose(
                    activated(next), reference(t), atol: Self.atol, rtol: Self.rtol, "\(name) b\(b) append t\(t)")
                checkedSteps += 1
            }
        }
        #expect(checkedSteps > 0, "\(name): no sequence had two real steps to append")
    }

    /// What happens to agent `agent` in the lockstep test: episodes of different lengths,
    /// a pause of `gap` steps between them, a target of its own.
    struct Schedule {
        var lengths: [Int]
        var gap: Int
        var target: Float
    }

    /// N agents acting in lockstep through one policy equal N one-agent policies at every
    /// step, with flow and softmax attention: the episodes have different lengths, finish and
    /// restart at different times (some at once, some after a pause), and windows (K = 4)
    /// both grow and slide. With `rowLimit` 16, every pass runs in groups.
    @Test(arguments: [(AttentionKind.flow, 4096), (.softmax, 4096), (.flow, 16), (.softmax, 16)])
    func lockstepAgentsEqualOneAgentPolicies(attention: AttentionKind, rowLimit: Int) throws {
        let (model, _) = smallModelAndBatch(attention: attention, seed: 21)
        let c = model.configuration
        let (S, A) = (c.stateDimension, c.actionDimension)
        let encoding = ContextEncoding(
            stateMean: (0..<S).map { Float($0) * 0.1 }, stateScale: (0..<S).map { 1 + Float($0) * 0.2 },
            rewardScale: 10, for: c)
        let schedules = [
            Schedule(lengths: [3, 9, 2, 12], gap: 0, target: 20),
            Schedule(lengths: [11, 1, 6], gap: 1, target: 35),
            Schedule(lengths: [5, 5, 5, 5], gap: 2, target: 12),
            Schedule(lengths: [30], gap: 0, target: 50),
            Schedule(lengths: [1, 2, 3, 4, 5, 6], gap: 0, target: 8),
        ]
        let N = schedules.count
        let many = DecisionPolicy(
            weights: model.weights, encoding: encoding, agents: N, threads: 2, flowChunkLength: nil, rowLimit: rowLimit)
        let singles = (0..<N).map { _ in DecisionPolicy(weights: model.weights, encoding: encoding, threads: 1) }
        var random = RandomGenerator(seed: 77)
        var episode = [Int](repeating: 0, count: N)
        var stepInEpisode = [Int](repeating: 0, count: N)
        var pause = [Int](repeating: 0, count: N)
        for agent in 0..<N {
            try many.reset(agent: agent, targetReturn: schedules[agent].target)
            singles[agent].reset(targetReturn: schedules[agent].target)
        }
        var observations = [Float](repeating: .nan, count: N * S)  // rows of idle agents stay NaN
        var actions = [Float](repeating: 0, count: N * A)
        var rewards = [Float](repeating: .nan, count: N)
        var phasesSeen = Set<String>()
        var splitSeen = rowLimit == 4096
        var decisions = 0
        for step in 0..<40 {
            let active = (0..<N).filter { (try? many.isActive(agent: $0)) == true }
            guard !active.isEmpty else { break }
            for agent in 0..<N { for j in 0..<S { observations[agent * S + j] = active.contains(agent) ? random.nextGaussian() : .nan } }
            var output = actions.mutableSpan
            try many.act(observations: observations.span, into: &output)
            let tokens = active.map { many.engine.lastTokenCounts[$0] }
            phasesSeen.formUnion(tokens.map { $0 == 4 ? "append" : "window" })
            // One pass for the growing agents and one per window length among the others, each
            // split into as many groups as the workspace's capacity makes.
            let w = many.engine.workspace
            func groups(_ count: Int, _ capacity: Int) -> Int { (count + capacity - 1) / capacity }
            var expectedPasses = groups(tokens.filter { $0 == 4 }.count, w.appendCapacity)
            for length in Set(tokens.filter { $0 != 4 }) {
                expectedPasses += groups(tokens.filter { $0 == length }.count, w.windowCapacity(timesteps: length / 3))
            }
            #expect(many.engine.lastPassCount == expectedPasses, "step \(step): passes for \(tokens)")
            if rowLimit < 4096 && tokens.filter({ $0 == 12 }).count > 1 { splitSeen = true }
            for agent in active {
                let observation = Array(observations[(agent * S)..<((agent + 1) * S)])
                let single = try singles[agent].action(for: observation)
                expectClose(
                    Array(actions[(agent * A)..<((agent + 1) * A)]), single, atol: Self.atol, rtol: Self.rtol,
                    "\(attention) rows \(rowLimit): step \(step) agent \(agent)")
                decisions += 1
                rewards[agent] = random.nextGaussian() * 3
            }
            try many.record(rewards: rewards.span)
            for agent in active { singles[agent].record(reward: rewards[agent]) }
            for agent in 0..<N { rewards[agent] = .nan }  // idle agents' rewards are not read
            // Episode bookkeeping: finish, pause, restart.
            for agent in 0..<N {
                let schedule = schedules[agent]
                if active.contains(agent) {
                    stepInEpisode[agent] += 1
                    guard stepInEpisode[agent] == schedule.lengths[episode[agent] % schedule.lengths.count] else {
                        continue
                    }
                    episode[agent] += 1
                    stepInEpisode[agent] = 0
                    pause[agent] = schedule.gap
                    try many.finish(agent: agent)
                }
                if !(try many.isActive(agent: agent)) {
                    if pause[agent] > 0 {
                        pause[agent] -= 1
                    } else {
                        let target = schedule.target + Float(episode[agent])
                        try many.reset(agent: agent, targetReturn: target)
                        singles[agent].reset(targetReturn: target)
                    }
                }
            }
        }
        #expect(decisions > 150)
        #expect(phasesSeen == ["append", "window"], "both passes ran: \(phasesSeen)")
        #expect(splitSeen, "with rows for one full window a pass, a step had two sliding windows to split")
    }

    /// Reuse turned off for a step in mid-episode and on again: the next step recomputes the
    /// window and keeps its state again (a window pass that keeps state at T > 1), and every
    /// action agrees with a policy that never reuses.
    @Test(arguments: AttentionKind.allCases)
    func reuseTurnedOffAndOnInMidEpisodeAgrees(attention: AttentionKind) throws {
        let (model, _) = smallModelAndBatch(attention: attention, seed: 31)
        let c = model.configuration
        let policy = DecisionPolicy(weights: model.weights, encoding: .identity(for: c), threads: 2)
        let reference = DecisionPolicy(weights: model.weights, encoding: .identity(for: c), threads: 2)
        reference.reusesActivations = false
        var tokens: [Int] = []
        for p in [policy, reference] { p.reset(targetReturn: 6) }
        for t in 0..<6 {  // K = 4: the window grows for 4 steps, then slides
            policy.reusesActivations = t != 1
            let observation = testValues(c.stateDimension, seed: UInt64(40 + t))
            expectClose(
                try policy.action(for: observation), try reference.action(for: observation), atol: 1e-6, rtol: 1e-5,
                "\(attention) step \(t)")
            tokens.append(policy.lastPassTokenCount)
            for p in [policy, reference] { p.record(reward: 0.4) }
        }
        // Step 1 without reuse, step 2 a window pass that keeps state, step 3 an append.
        #expect(tokens == [3, 6, 9, 4, 12, 12], "\(tokens)")
    }

    /// Policies on different threads read one set of weights at once: each acts exactly as
    /// when it ran alone (the weights hold nothing a pass writes).
    @Test(arguments: AttentionKind.allCases)
    func policiesOnTwoThreadsShareTheWeights(attention: AttentionKind) throws {
        let (model, _) = smallModelAndBatch(attention: attention, seed: 35)
        let c = model.configuration
        let policies = (0..<2).map { _ in DecisionPolicy(weights: model.weights, encoding: .identity(for: c), agents: 3) }
        /// 40 steps of 3 agents, every episode 7 steps long; returns every action taken.
        @Sendable func episodeActions(_ policy: DecisionPolicy) -> [Float] {
            var taken: [Float] = []
            var actions = [Float](repeating: 0, count: 3 * c.actionDimension)
            for step in 0..<40 {
                if step % 7 == 0 { for agent in 0..<3 { try? policy.reset(agent: agent, targetReturn: 4) } }
                let observations = testValues(3 * c.stateDimension, seed: UInt64(100 + step))
                var output = actions.mutableSpan
                guard (try? policy.act(observations: observations.span, into: &output)) != nil else { return [] }
                taken += actions
                guard (try? policy.record(rewards: [0.5, 0.5, 0.5].span)) != nil else { return [] }
            }
            return taken
        }
        let alone = episodeActions(policies[0])
        final class Result: @unchecked Sendable { var actions: [Float] = [] }
        let together = [Result(), Result()]
        nonisolated(unsafe) let shared = policies
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            together[index].actions = episodeActions(shared[index])
        }
        #expect(alone.count == 40 * 3 * c.actionDimension)
        #expect(
            together[0].actions == alone && together[1].actions == alone,
            "\(attention): a policy acted differently beside another")
    }

    /// A policy reads the weights it shares in place: after an optimizer step on the training
    /// workspace, its next episode acts exactly as a policy made from a checkpoint of the
    /// updated weights.
    @Test func aPolicyActsWithTheSharedWeightsAsTheyAreNow() throws {
        let (model, batch) = smallModelAndBatch(seed: 33)
        let policy = DecisionPolicy(model: model, encoding: .identity(for: model.configuration))
        let observation = testValues(5, seed: 8)
        policy.reset(targetReturn: 3)
        let before = try policy.action(for: observation)
        var optimizer = AdamW(layout: model.layout)
        model.forward(batch, training: true)
        model.backward(batch)
        optimizer.update(model, learningRate: 1e-2)
        let copy = DecisionPolicy(
            weights: ModelWeights(checkpoint: Checkpoint(model: model)), encoding: .identity(for: model.configuration),
            threads: 2)
        for p in [policy, copy] { p.reset(targetReturn: 3) }
        let after = try policy.action(for: observation)
        #expect(after == (try copy.action(for: observation)), "the policy acted with the updated weights")
        #expect(after != before, "the optimizer step changed the action")
    }

    /// A warm step of 100 agents in mixed phases (some windows growing, some sliding, some
    /// just reset) allocates nothing, and neither does one of a single agent.
    ///
    /// With `rowLimit` 64 the 100 agents' passes run in groups. Two more agents wait idle, and
    /// one of them is reset for the first time inside the measured steps: its history was
    /// ready (its own buffers) before its first step.
    @Test(arguments: [(1, 4096), (100, 4096), (100, 64)])
    func aWarmStepAllocatesNothing(agents: Int, rowLimit: Int) throws {
        guard AllocationTests.isOptimizedBuild("aWarmStepAllocatesNothing") else { return }
        for attention in AttentionKind.allCases {
            let (model, _) = smallModelAndBatch(attention: attention, seed: 4)
            let c = model.configuration
            let policy = DecisionPolicy(
                weights: model.weights, encoding: .identity(for: c), agents: agents + 2, threads: 2,
                flowChunkLength: nil, rowLimit: rowLimit)
            let observations = [Float](repeating: 0.25, count: (agents + 2) * c.stateDimension)
            var actions = [Float](repeating: 0, count: (agents + 2) * c.actionDimension)
            let rewards = [Float](repeating: 0.5, count: agents + 2)
            func step(_ index: Int) throws {
                // Agent i restarts every 5 + i % 3 steps, so phases mix; agent `agents` starts
                // at step 14, inside the measured block.
                for agent in 0..<agents where index % (5 + agent % 3) == agent % 2 {
                    try policy.reset(agent: agent, targetReturn: 5)
                }
                if index == 14 { try policy.reset(agent: agents, targetReturn: 5) }
                var output = actions.mutableSpan
                try policy.act(observations: observations.span, into: &output)
                try policy.record(rewards: rewards.span)
            }
            for index in 0..<12 { try step(index) }  // warm: every pass kind has run
            let work = policy.engine.workspace.work
            // 100 agents' windows make passes large enough for the workers; one agent's run on
            // the calling thread.
            let rows = min(agents * c.tokenCount, policy.engine.workspace.rowCapacity)
            #expect(policy.engine.workspace.work(rows: rows).threadCount == (rows >= 256 ? 2 : 1))
            var index = 12
            let count = try AllocationTests.allocations(on: work) {
                for _ in 0..<6 {
                    try step(index)
                    index += 1
                }
            }
            #expect(count == 0, "\(attention), \(agents) agents, rows \(rowLimit): six warm steps made \(count) heap allocations")
        }
    }

    /// Every bad call throws its typed error and changes no agent: a policy that also got
    /// the bad calls acts exactly (bit for bit) like one that did not.
    @Test(arguments: AttentionKind.allCases)
    func badCallsChangeNothing(attention: AttentionKind) throws {
        let (model, _) = smallModelAndBatch(attention: attention, seed: 9)
        let c = model.configuration
        let (S, A, N) = (c.stateDimension, c.actionDimension, 3)
        let subject = DecisionPolicy(weights: model.weights, encoding: .identity(for: c), agents: N, threads: 2)
        let twin = DecisionPolicy(weights: model.weights, encoding: .identity(for: c), agents: N, threads: 2)
        var actions = [Float](repeating: 0, count: N * A)
        var observations = [Float](repeating: 0, count: N * S)
        func act(_ policy: DecisionPolicy, _ observations: [Float]) throws -> [Float] {
            var output = actions.mutableSpan
            try policy.act(observations: observations.span, into: &output)
            return actions
        }
        #expect(throws: PolicyError.notReset) { _ = try act(subject, observations) }
        #expect(throws: PolicyError.agentOutOfRange(agent: 3, agents: 3)) {
            try subject.reset(agent: 3, targetReturn: 1)
        }
        #expect(throws: PolicyError.agentOutOfRange(agent: -1, agents: 3)) {
            try subject.reset(agent: -1, targetReturn: 1)
        }
        #expect(throws: PolicyError.nonFiniteTarget(agent: 1)) { try subject.reset(agent: 1, targetReturn: .infinity) }
        #expect(throws: PolicyError.agentOutOfRange(agent: 7, agents: 3)) { try subject.finish(agent: 7) }
        for policy in [subject, twin] {
            try policy.reset(agent: 0, targetReturn: 4)
            try policy.reset(agent: 2, targetReturn: 6)
        }
        var random = RandomGenerator(seed: 5)
        for step in 0..<7 {
            for index in observations.indices { observations[index] = random.nextGaussian() }
            observations[S + 1] = .nan  // agent 1 is idle: its row is not read
            if step == 2 {
                var bad = observations
                bad[2 * S + 3] = .infinity
                #expect(throws: PolicyError.nonFiniteObservation(agent: 2, index: 3)) { _ = try act(subject, bad) }
                #expect(throws: PolicyError.wrongObservationLength(expected: N * S, got: N * S - 1)) {
                    _ = try act(subject, Array(observations.dropLast()))
                }
                var short = [Float](repeating: 0, count: N * A + 1)
                var output = short.mutableSpan
                #expect(throws: PolicyError.wrongActionBuffer(expected: N * A, got: N * A + 1)) {
                    try subject.act(observations: observations.span, into: &output)
                }
                _ = short
            }
            if step == 4 {
                // A refused reset of an agent in mid-episode leaves its episode as it was.
                #expect(throws: PolicyError.nonFiniteTarget(agent: 2)) { try subject.reset(agent: 2, targetReturn: .nan) }
                #expect(throws: PolicyError.agentOutOfRange(agent: 3, agents: 3)) { _ = try subject.isActive(agent: 3) }
            }
            let ours = try act(subject, observations)
            let theirs = try act(twin, observations)
            #expect(ours == theirs, "step \(step): the bad calls changed an action")
            if step == 3 {
                #expect(throws: PolicyError.rewardNotRecorded) { _ = try act(subject, observations) }
                #expect(throws: PolicyError.wrongRewardCount(expected: 3, got: 2)) {
                    try subject.record(rewards: [Float](repeating: 1, count: 2).span)
                }
                #expect(throws: PolicyError.nonFiniteReward(agent: 2)) {
                    try subject.record(rewards: [1, 1, .nan].span)
                }
            }
            let rewards: [Float] = [random.nextGaussian(), .nan, random.nextGaussian()]  // agent 1's is not read
            try subject.record(rewards: rewards.span)
            try twin.record(rewards: rewards.span)
        }
    }

    /// Finite values that overflow once the encoding scales them (an observation, a target,
    /// a reward that would push the return-to-go past Float's range) are refused like NaN:
    /// a typed error, and no agent changes.
    @Test func valuesThatOverflowOnceScaledAreRefused() throws {
        let (model, _) = smallModelAndBatch(seed: 12)
        let c = model.configuration
        let encoding = ContextEncoding(
            stateMean: [Float](repeating: 0, count: c.stateDimension),
            stateScale: [Float](repeating: 1e-3, count: c.stateDimension), rewardScale: 1e-3, for: c)
        let (subject, twin) = (0..<2).map { _ in DecisionPolicy(weights: model.weights, encoding: encoding, agents: 2) }
            .pair
        #expect(throws: PolicyError.nonFiniteTarget(agent: 1)) { try subject.reset(agent: 1, targetReturn: 1e36) }
        for p in [subject, twin] {
            try p.reset(agent: 0, targetReturn: 3e35)  // 3e38 in the model's scale
            try p.reset(agent: 1, targetReturn: 2)
        }
        var actions = [Float](repeating: 0, count: 2 * c.actionDimension)
        /// The actions' bits: agent 0's return-to-go of 3e38 saturates the model (its actions
        /// may be NaN), and a refused call must change none of them.
        func act(_ p: DecisionPolicy, _ observations: [Float]) throws -> [UInt32] {
            var output = actions.mutableSpan
            try p.act(observations: observations.span, into: &output)
            return actions.map(\.bitPattern)
        }
        var observations = testValues(2 * c.stateDimension, seed: 3)
        var huge = observations
        huge[c.stateDimension + 2] = 1e36  // agent 1: 1e39 once divided by 1e-3
        #expect(throws: PolicyError.nonFiniteObservation(agent: 1, index: 2)) { _ = try act(subject, huge) }
        #expect(try act(subject, observations) == (try act(twin, observations)))
        // Agent 0's return-to-go is 3e38; a reward of −1e35 (−1e38 scaled) would make it 4e38.
        #expect(throws: PolicyError.nonFiniteReward(agent: 0)) { try subject.record(rewards: [-1e35, 0].span) }
        for p in [subject, twin] { try p.record(rewards: [1e34, 0.5].span) }
        observations = testValues(2 * c.stateDimension, seed: 4)
        #expect(try act(subject, observations) == (try act(twin, observations)))
    }

    /// The one-agent calls cannot throw on a bad target or reward, so they keep the refusal
    /// until a valid call replaces it: the next action throws it, and nothing was recorded.
    @Test func oneAgentRefusalsWaitForTheNextAction() throws {
        let (model, _) = smallModelAndBatch(seed: 9)
        let policy = DecisionPolicy(model: model, encoding: .identity(for: model.configuration))
        let twin = DecisionPolicy(model: model, encoding: .identity(for: model.configuration))
        let observation: [Float] = [0.1, 0.2, 0.3, 0.4, 0.5]
        policy.reset(targetReturn: .nan)
        #expect(throws: PolicyError.nonFiniteTarget(agent: 0)) { _ = try policy.action(for: observation) }
        for p in [policy, twin] { p.reset(targetReturn: 5) }
        for p in [policy, twin] { _ = try p.action(for: observation) }
        policy.record(reward: .infinity)
        #expect(throws: PolicyError.nonFiniteReward(agent: 0)) { _ = try policy.action(for: observation) }
        for p in [policy, twin] { p.record(reward: 1.5) }
        #expect(try policy.action(for: observation) == (try twin.action(for: observation)))
        // A refused target is not cleared by recording a reward: only a valid reset clears it.
        policy.reset(targetReturn: -.infinity)
        for p in [policy, twin] { p.record(reward: 0.5) }
        #expect(throws: PolicyError.nonFiniteTarget(agent: 0)) { _ = try policy.action(for: observation) }
        for p in [policy, twin] { p.reset(targetReturn: 7) }
        #expect(try policy.action(for: observation) == (try twin.action(for: observation)))
    }
}

extension Array {
    /// The first two elements, for a pair built with `map`.
    fileprivate var pair: (Element, Element) { (self[0], self[1]) }
}
