import Foundation
import TestSupport
import Testing

@testable import DecisionFlow
@testable import DecisionFlowCheckpoints

@Suite struct PolicyTests {
    /// dt_flow_rollout (12 steps, K 5: the window slides) and dt_flow_rollout_long (300
    /// steps, K 500: the window only grows, so every decision after the first continues the
    /// carried Flow-Attention state) reproduced step by step through the embedding API.
    @Test(arguments: ["dt_flow_rollout", "dt_flow_rollout_long"])
    func decisionPolicyReproducesTheReferenceRollout(name: String) throws {
        let contents = try ReferenceFixtures.load(name)
        let m = contents.metadata
        let S = try #require(m["state_dim"].flatMap { Int($0) })
        let A = try #require(m["act_dim"].flatMap { Int($0) })
        let configuration = ModelConfiguration(
            stateDimension: S, actionDimension: A, contextLength: try #require(m["K"].flatMap { Int($0) }),
            embeddingDimension: try #require(m["hidden"].flatMap { Int($0) }),
            layerCount: try #require(m["n_layer"].flatMap { Int($0) }),
            headCount: try #require(m["n_head"].flatMap { Int($0) }),
            maxEpisodeLength: try #require(m["max_ep_len"].flatMap { Int($0) }),
            attention: .flow)
        let model = DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 0)
        try model.load(stateDictionary: contents.tensors, prefix: "param/", source: name)
        // The fixture feeds raw states and unscaled rewards.
        let policy = DecisionPolicy(model: model, encoding: .identity(for: model.configuration))
        let observations = try #require(contents.tensors["input/observations"]).values
        let rewards = try #require(contents.tensors["input/rewards"]).values
        let expected = try #require(contents.tensors["output/actions"]).values
        policy.reset(targetReturn: try #require(contents.tensors["input/target_return"]).values[0])
        try #require(
            !rewards.isEmpty && observations.count == rewards.count * S && expected.count == rewards.count * A,
            "\(name): the fixture's arrays disagree in length")
        for t in 0..<rewards.count {
            let action = try policy.action(for: Array(observations[(t * S)..<((t + 1) * S)]))
            expectClose(action, Array(expected[(t * A)..<((t + 1) * A)]), atol: 1e-5, rtol: 1e-4, "\(name) step \(t)")
            policy.record(reward: rewards[t])
        }
    }

    @Test func badCallsAreRefused() throws {
        let (model, _) = smallModelAndBatch()
        let policy = DecisionPolicy(model: model, encoding: .identity(for: model.configuration))
        #expect(throws: PolicyError.notReset) { try policy.action(for: [0, 0, 0, 0, 0]) }
        policy.reset(targetReturn: 10)
        #expect(throws: PolicyError.wrongObservationLength(expected: 5, got: 4)) {
            try policy.action(for: [0, 0, 0, 0])
        }
        #expect(throws: PolicyError.nonFiniteObservation(index: 2)) { try policy.action(for: [0, 0, .nan, 0, 0]) }
        _ = try policy.action(for: [0, 0, 0, 0, 0])
        #expect(throws: PolicyError.rewardNotRecorded) { try policy.action(for: [0, 0, 0, 0, 0]) }
        policy.record(reward: 1)
        #expect(try policy.action(for: [0, 0, 0, 0, 0]).count == 2)
    }

    /// Past the window (K = 4 here), every call still answers, from the last K steps.
    @Test func longEpisodesSlideTheWindow() throws {
        let (model, _) = smallModelAndBatch()
        let policy = DecisionPolicy(model: model, encoding: .identity(for: model.configuration))
        policy.reset(targetReturn: 10)
        for t in 0..<60 {
            let action = try policy.action(for: [Float(t) / 60, 0.1, -0.2, 0.3, 0])
            #expect(action.allSatisfy(\.isFinite) && action.allSatisfy { abs($0) <= 1 })
            policy.record(reward: 0.5)
        }
    }
}

/// Reusing the unchanged prefix while the window grows gives the actions of full passes.
@Suite struct PolicyReuseTests {
    /// Two policies on copies of `checkpoint`'s model (S 5): one reusing activations, one
    /// recomputing every window.
    static func reusingAndFull(_ checkpoint: Checkpoint, threads: Int = 2) -> (DecisionPolicy, DecisionPolicy) {
        let policies = (0..<2).map { _ in
            DecisionPolicy(
                model: DecisionTransformer(checkpoint: checkpoint, batchCapacity: 1, threads: threads),
                encoding: .identity(for: checkpoint.configuration))
        }
        policies[1].reusesActivations = false
        return (policies[0], policies[1])
    }

    @Test(arguments: AttentionKind.allCases)
    func reuseAgreesWithFullRecomputation(attention: AttentionKind) throws {
        let (model, _) = smallModelAndBatch(attention: attention, seed: 21)
        let (reusing, full) = Self.reusingAndFull(Checkpoint(model: model))
        for episode in 0..<2 {
            reusing.reset(targetReturn: 8)
            full.reset(targetReturn: 8)
            for t in 0..<12 {  // K = 4: grows for four steps, then slides
                let observation = testValues(5, seed: UInt64(100 * episode + t))
                let a = try reusing.action(for: observation)
                let b = try full.action(for: observation)
                expectClose(a, b, atol: 1e-6, rtol: 1e-5, "\(attention) episode \(episode) step \(t)")
                reusing.record(reward: 0.3)
                full.record(reward: 0.3)
            }
        }
    }

    /// A flow policy whose window holds a whole episode (K = 1000) continues its carried
    /// Flow-Attention state at every step, running four tokens a decision, and matches a full
    /// recompute of the window at every one of the 1000 steps.
    @Test func recurrentActingMatchesFullRecomputationOverAWholeEpisode() throws {
        let configuration = ModelConfiguration(
            stateDimension: 5, actionDimension: 2, contextLength: 1000, embeddingDimension: 16, layerCount: 2,
            headCount: 2, maxEpisodeLength: 1000, attention: .flow)
        let (recurrent, full) = Self.reusingAndFull(
            Checkpoint(model: DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 31)), threads: 1)
        recurrent.reset(targetReturn: 300)
        full.reset(targetReturn: 300)
        for t in 0..<1000 {
            let observation = testValues(5, seed: UInt64(5000 + t))
            let a = try recurrent.action(for: observation)
            let b = try full.action(for: observation)
            #expect(recurrent.lastPassTokenCount == (t == 0 ? 3 : 4), "step \(t)")
            #expect(full.lastPassTokenCount == 3 * (t + 1))
            expectClose(a, b, atol: 1e-5, rtol: 1e-4, "step \(t)")
            recurrent.record(reward: 0.3)
            full.record(reward: 0.3)
        }
    }

    /// Once the window slides, every position changes: the policy recomputes the window, and
    /// when a new episode starts it grows (and continues its state) again.
    @Test func aSlidingWindowIsRecomputedAndAResetGrowsAgain() throws {
        let configuration = ModelConfiguration(
            stateDimension: 5, actionDimension: 2, contextLength: 6, embeddingDimension: 16, layerCount: 2,
            headCount: 2, maxEpisodeLength: 100, attention: .flow)
        let (recurrent, full) = Self.reusingAndFull(
            Checkpoint(model: DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 32)))
        for episode in 0..<2 {
            recurrent.reset(targetReturn: 20)
            full.reset(targetReturn: 20)
            for t in 0..<40 {
                let observation = testValues(5, seed: UInt64(700 * episode + t))
                let a = try recurrent.action(for: observation)
                let b = try full.action(for: observation)
                expectClose(a, b, atol: 1e-5, rtol: 1e-4, "episode \(episode) step \(t)")
                let expectedTokens = t == 0 ? 3 : (t < 6 ? 4 : 18)
                #expect(recurrent.lastPassTokenCount == expectedTokens, "episode \(episode) step \(t)")
                recurrent.record(reward: 0.5)
                full.record(reward: 0.5)
            }
        }
    }
}
