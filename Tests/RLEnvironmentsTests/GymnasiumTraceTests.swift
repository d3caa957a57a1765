import Foundation
import RLEnvironments
import TestSupport
import Testing

/// The pure-Swift tasks against gymnasium 1.2.3's own traces (../shared/fixtures/environments):
/// from each trace's initial state, the same actions give the same observations and rewards
/// (to 1e-5) and the same terminated/truncated flags.
@Suite struct GymnasiumTraceTests {
    struct Trace: Decodable {
        var env_id: String
        var initial_state: [Double]
        var actions: [[Float]]
        var observations: [[Double]]
        var rewards: [Double]
        var terminated: [Bool]
        var truncated: [Bool]
    }

    static let directory = SharedFolder.url.appendingPathComponent("fixtures/environments")

    @Test(arguments: [
        "Pendulum-v1-seed0", "Pendulum-v1-seed1", "MountainCarContinuous-v0-seed0", "MountainCarContinuous-v0-seed1",
        "MountainCarContinuous-v0-goal",
    ])
    func replayMatchesGymnasium(name: String) throws {
        let trace = try JSONDecoder().decode(
            Trace.self, from: Data(contentsOf: Self.directory.appendingPathComponent("\(name).json")))
        let environment: any Environment = trace.env_id.hasPrefix("Pendulum") ? Pendulum() : MountainCarContinuous()
        let steps = trace.actions.count
        // Lengths first: comparing by `zip` would drop a tail silently.
        try #require(steps > 0, "\(name): the trace has no steps")
        let counts: [Int] = [trace.observations.count, trace.rewards.count, trace.terminated.count, trace.truncated.count]
        try #require(counts == [steps, steps, steps, steps], "\(name): the trace's arrays differ in length")
        _ = environment.reset(seed: 0)
        try environment.setState(trace.initial_state)
        var ended = false
        for (index, action) in trace.actions.enumerated() {
            try #require(!ended, "\(name): our episode ended before step \(index), gymnasium's goes on")
            let result = try environment.step(action: action)
            expectClose(result.observation, trace.observations[index], atol: 1e-5, rtol: 0, "\(name) step \(index) observation")
            expectClose(result.reward, trace.rewards[index], atol: 1e-5, rtol: 0, "\(name) step \(index) reward")
            #expect(result.terminated == trace.terminated[index], "\(name) step \(index): terminated")
            #expect(result.truncated == trace.truncated[index], "\(name) step \(index): truncated")
            ended = result.terminated || result.truncated
        }
        // Our environment ends the episode at the trace's last step, as gymnasium's did.
        #expect(ended, "\(name): our episode is still running after the trace's \(steps) steps")
    }
}
