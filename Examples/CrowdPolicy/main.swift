// CrowdPolicy: one trained policy acting for many agents of one simulation, all in one loop.
//
//   swift run -c release CrowdPolicy runs/demo-…/checkpoint.safetensors [agents] [episodes] [target-return]
//
// Every agent here is a MuJoCo Hopper of its own, and each runs `episodes` episodes one after
// another: episodes end at different steps, so agents restart at different times while the
// others go on. The policy holds one copy of the weights for all of them and decides for every
// agent in an episode with one call a step.
import DecisionFlow
import DecisionFlowCheckpoints
import Foundation
import RLEnvironments

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: CrowdPolicy CHECKPOINT [AGENTS] [EPISODES] [TARGET_RETURN]\n".utf8))
    exit(64)
}
/// Argument `index`, read by `parse`, or `fallback` when it is not given; exits 64 naming the
/// argument when it is given but not `what`.
func argument<T>(_ index: Int, _ name: String, _ what: String, default fallback: T, _ parse: (String) -> T?) -> T {
    guard arguments.count > index else { return fallback }
    guard let value = parse(arguments[index]) else {
        FileHandle.standardError.write(Data("\(name) '\(arguments[index])' is not \(what)\n".utf8))
        exit(64)
    }
    return value
}
guard arguments.count <= 5 else {
    FileHandle.standardError.write(Data("too many arguments: usage: CrowdPolicy CHECKPOINT [AGENTS] [EPISODES] [TARGET_RETURN]\n".utf8))
    exit(64)
}
// Each simulated hopper holds a few MB of MuJoCo state: a thousand is plenty for an example.
let agents = argument(2, "AGENTS", "a whole number from 1 to 1000", default: 16) { Int($0).flatMap { (1...1000).contains($0) ? $0 : nil } }
let episodes = argument(3, "EPISODES", "a whole number from 1 to 1000", default: 2) { Int($0).flatMap { (1...1000).contains($0) ? $0 : nil } }
let target = argument(4, "TARGET_RETURN", "a finite decimal number", default: Float(3600)) { text in
    Float(text).flatMap { $0.isFinite && !text.lowercased().contains("x") ? $0 : nil }
}

do {
    // 1. One policy for every agent: the weights are loaded once and shared.
    let policy = try DecisionPolicy(checkpointPath: arguments[1], agents: agents, threads: 2)
    let (S, A) = (policy.observationDimension, policy.actionDimension)

    // 2. The simulation: one hopper per agent. Row i of each array belongs to agent i. The
    //    policy must have been trained for the simulator's observation and action sizes.
    let bodies = try (0..<agents).map { _ in try Hopper() }
    guard bodies[0].observationSpace.dimension == S, bodies[0].actionSpace.dimension == A else {
        FileHandle.standardError.write(
            Data(
                "error: \(arguments[1]) is a policy for observations of \(S) and actions of \(A); hopper has \(bodies[0].observationSpace.dimension) and \(bodies[0].actionSpace.dimension)\n"
                    .utf8))
        exit(65)
    }
    var observations = [Float](repeating: 0, count: agents * S)
    var actions = [Float](repeating: 0, count: agents * A)
    var rewards = [Float](repeating: 0, count: agents)
    var finished = [Int](repeating: 0, count: agents)  // episodes each agent completed
    var returns: [Double] = []
    var running = [Double](repeating: 0, count: agents)

    func start(_ agent: Int) throws {
        let observation = bodies[agent].reset(seed: UInt64(agent * 1000 + finished[agent]))
        for j in 0..<S { observations[agent * S + j] = observation[j] }
        running[agent] = 0
        try policy.reset(agent: agent, targetReturn: target)
    }
    for agent in 0..<agents { try start(agent) }

    // 3. The loop: one call decides for every agent in an episode; the simulation steps them;
    //    their rewards go back in one call; agents whose episode ended restart or stop.
    var decisions = 0
    let started = Date()
    while policy.activeAgentCount > 0 {
        var output = actions.mutableSpan
        try policy.act(observations: observations.span, into: &output)
        var ended: [Int] = []
        for agent in 0..<agents where try policy.isActive(agent: agent) {
            let result = try bodies[agent].step(action: Array(actions[(agent * A)..<((agent + 1) * A)]))
            decisions += 1
            running[agent] += result.reward
            rewards[agent] = Float(result.reward)
            for j in 0..<S { observations[agent * S + j] = result.observation[j] }
            if result.terminated || result.truncated { ended.append(agent) }
        }
        try policy.record(rewards: rewards.span)
        for agent in ended {
            returns.append(running[agent])
            finished[agent] += 1
            if finished[agent] < episodes { try start(agent) } else { try policy.finish(agent: agent) }
        }
    }
    let seconds = Date().timeIntervalSince(started)
    let mean = returns.reduce(0, +) / Double(returns.count)
    print(
        String(
            format: "%d agents, %d episodes: mean return %.1f (target %.0f); %d decisions in %.2f s, %.1f µs each including physics",
            agents, returns.count, mean, target, decisions, seconds, seconds * 1e6 / Double(decisions)))
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(65)
}
