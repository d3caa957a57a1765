import Foundation
import RLEnvironments
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

    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["DECISIONFLOW_SHARED"] {
            return URL(fileURLWithPath: override).appendingPathComponent("fixtures/environments")
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                "shared/fixtures/environments")
    }()

    @Test(arguments: [
        "Pendulum-v1-seed0", "Pendulum-v1-seed1", "MountainCarContinuous-v0-seed0", "MountainCarContinuous-v0-seed1",
        "MountainCarContinuous-v0-goal",
    ])
    func replayMatchesGymnasium(name: String) throws {
        let trace = try JSONDecoder().decode(
            Trace.self, from: Data(contentsOf: Self.directory.appendingPathComponent("\(name).json")))
        let environment: any Environment = trace.env_id.hasPrefix("Pendulum") ? Pendulum() : MountainCarContinuous()
        _ = environment.reset(seed: 0)
        try environment.setState(trace.initial_state)
        for (index, action) in trace.actions.enumerated() {
            let result = try environment.step(action: action)
            for (ours, theirs) in zip(result.observation, trace.observations[index]) {
                #expect(
                    abs(Double(ours) - theirs) <= 1e-5,
                    "\(name) step \(index): observation \(result.observation) vs \(trace.observations[index])")
            }
            #expect(
                abs(result.reward - trace.rewards[index]) <= 1e-5,
                "\(name) step \(index): reward \(result.reward) vs \(trace.rewards[index])")
            #expect(result.terminated == trace.terminated[index], "\(name) step \(index): terminated")
            #expect(result.truncated == trace.truncated[index], "\(name) step \(index): truncated")
        }
        #expect(trace.terminated.last == true || trace.truncated.last == true)
    }
}
