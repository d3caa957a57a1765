import Testing
import TestSupport

@testable import DecisionFlow

/// The reference's `get_action` protocol, step by step (dt_flow_rollout): at step t the
/// history holds states 0…t, the model's own actions 0…t−1 then a zero placeholder, returns-
/// to-go with rtg[t] = rtg[t−1] − rewards[t−1], and timesteps 0…t; only the last K steps are
/// kept, with no padding, and the action predicted at the last state is the answer.
@Suite struct RolloutParityTests {
    @Test(arguments: ["dt_flow_rollout", "dt_flow_rollout_long"])
    func getActionProtocolMatchesReference(name: String) throws {
        let contents = try ReferenceFixtures.load(name)
        let metadata = contents.metadata
        let S = try #require(metadata["state_dim"].flatMap { Int($0) })
        let A = try #require(metadata["act_dim"].flatMap { Int($0) })
        let K = try #require(metadata["K"].flatMap { Int($0) })
        let configuration = ModelConfiguration(
            stateDimension: S, actionDimension: A, contextLength: K,
            embeddingDimension: try #require(metadata["hidden"].flatMap { Int($0) }),
            layerCount: try #require(metadata["n_layer"].flatMap { Int($0) }),
            headCount: try #require(metadata["n_head"].flatMap { Int($0) }),
            maxEpisodeLength: try #require(metadata["max_ep_len"].flatMap { Int($0) }), attention: .flow)
        let model = DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 0)
        try model.load(stateDictionary: contents.tensors, prefix: "param/", source: name)

        let observations = try #require(contents.tensors["input/observations"]).values
        let rewards = try #require(contents.tensors["input/rewards"]).values
        let expected = try #require(contents.tensors["output/actions"]).values
        let steps = rewards.count
        try #require(
            steps > 0 && observations.count == steps * S && expected.count == steps * A,
            "\(name): the fixture's arrays disagree in length")
        var returnsToGo = [try #require(contents.tensors["input/target_return"]).values[0]]
        var actions: [Float] = []
        for t in 0..<steps {
            if t > 0 { returnsToGo.append(returnsToGo[t - 1] - rewards[t - 1]) }
            actions += [Float](repeating: 0, count: A)  // the placeholder for this step's action
            let T = min(t + 1, K)
            let first = t + 1 - T
            let batch = TrajectoryBatch(capacity: 1, timesteps: T, stateDimension: S, actionDimension: A)
            batch.states = Array(observations[(first * S)..<((t + 1) * S)])
            batch.actions = Array(actions[(first * A)..<((t + 1) * A)])
            batch.returnsToGo = Array(returnsToGo[first...t])
            batch.timestepIndices = (first...t).map { Int32($0) }
            batch.mask = [Float](repeating: 1, count: T)
            model.forward(batch)
            let action = Array(model.actionPredictionBuffer[((T - 1) * A)..<(T * A)])
            expectClose(action, Array(expected[(t * A)..<((t + 1) * A)]), atol: 1e-5, rtol: 1e-4, "\(name) step \(t) action")
            actions.replaceSubrange((t * A)..<((t + 1) * A), with: action)
        }
    }

    @Test func warmupScheduleRisesLinearlyThenHolds() {
        let schedule = WarmupSchedule(learningRate: 1e-3, warmupSteps: 4)
        expectClose(
            (0..<6).map { schedule.learningRate(atStep: $0) }, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3], atol: 0,
            rtol: 1e-6, "warmup")
        expectClose(WarmupSchedule(learningRate: 1e-4, warmupSteps: 0).learningRate(atStep: 0), 1e-4, atol: 0, rtol: 1e-6, "no warmup")
    }

    @Test func clippingScalesToTheMaximumNorm() {
        var values: [Float] = [3, 4]  // norm 5
        let norm = values.withUnsafeMutableBufferPointer { clipGradientNorm($0, maxNorm: 0.25) }
        #expect(norm == 5)
        expectClose((values[0] * values[0] + values[1] * values[1]).squareRoot(), 0.25, atol: 1e-6, rtol: 0, "clipped norm")
        var small: [Float] = [0.01, 0.02]
        small.withUnsafeMutableBufferPointer { _ = clipGradientNorm($0, maxNorm: 0.25) }
        #expect(small == [0.01, 0.02])
    }
}
