// EmbeddedPolicy: a trained Decision-Flowformer driving a Swift simulation, step by step.
//
//   swift run -c release EmbeddedPolicy runs/demo-…/checkpoint.safetensors [target-return]
//
// The simulator here is DecisionFlow's MuJoCo Hopper, but the policy knows nothing about it:
// any loop that produces observations and rewards can call it the same way.
import DecisionFlow
import DecisionFlowCheckpoints
import Foundation
import RLEnvironments

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: EmbeddedPolicy CHECKPOINT [TARGET_RETURN]\n".utf8))
    exit(64)
}

do {
    // 1. Load the policy: weights, configuration and state normalization come from the file.
    let policy = try DecisionPolicy(checkpointPath: arguments[1])
    let target = arguments.count > 2 ? Float(arguments[2]) ?? 3600 : 3600

    // 2. Your simulator. Its observation and action sizes must match the policy's.
    let simulator = try Hopper()
    var observation = simulator.reset(seed: 0)

    // 3. The loop: one action per step, then tell the policy what reward it earned. Writing
    //    into a span of an array you keep allocates nothing per step; the simpler
    //    `let action = try policy.action(for: observation)` returns a new array instead.
    policy.reset(targetReturn: target)
    var action = [Float](repeating: 0, count: policy.actionDimension)
    var episodeReturn = 0.0
    var steps = 0
    let started = Date()
    while true {
        var output = action.mutableSpan
        try policy.action(for: observation.span, into: &output)
        let result = try simulator.step(action: action)
        episodeReturn += result.reward
        steps += 1
        if result.terminated || result.truncated { break }
        policy.record(reward: Float(result.reward))
        observation = result.observation
    }
    let perStep = Date().timeIntervalSince(started) / Double(steps) * 1000
    print(
        String(
            format: "return %.1f over %d steps (target %.0f), %.2f ms per step including physics", episodeReturn, steps,
            target, perStep))
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(65)
}
