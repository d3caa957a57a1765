import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import Foundation
import RLEnvironments

/// `d4rl-run bench policy`: decision latency of the embedding API, the cost per decision as
/// one policy acts for more agents, and batched evaluation.
struct PolicyBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Decision latency of DecisionPolicy, its cost per agent-decision for many agents, and batched evaluation throughput.",
        discussion: """
            Latency: a one-agent, one-thread DecisionPolicy for hopper-sized data (S 11, A 3) \
            with K 20 is fed K steps to fill its window, then --decisions more; each decision \
            (normalize, run the model on 60 tokens, read the action) is timed alone and p50 and \
            p99 are reported. \
            Agents: for each count in --agents, a fresh process builds dt-default weights and \
            one DecisionPolicy for that many agents (--threads), fills every agent's window, and \
            times steps in which every agent decides on a sliding window (one call for all); it \
            reports the time per step, per agent-decision, the ratio to one agent's decision, \
            and the resident memory the policy added per agent (the weights are made before \
            and shared). \
            Throughput: --episodes hopper episodes run at once through RolloutEvaluation (one \
            policy acting for every episode), with --checkpoint's policy or random weights; \
            environment steps per second over the whole evaluation.
            """
    )

    @Option(parsing: .unconditional, help: "Timed decisions per configuration (per agent count: at least 5 steps).")
    var decisions = 500

    @Option(parsing: .unconditional, help: "Parallel episodes for the throughput measurement.")
    var episodes = 100

    @Option(parsing: .unconditional, help: "Agent counts for the many-agent measurement, comma-separated (empty: skip it).")
    var agents = "1,10,100,1000"

    @Option(help: .hidden) var childAgents: Int?

    func validate() throws {
        try requireFlag("decisions", decisions, in: 1...10_000_000)
        try requireFlag("episodes", episodes, in: 1...1000)  // a hopper holds a few MB
        _ = try parsedAgents()
        if let childAgents { try requireFlag("child-agents", childAgents, in: 1...10_000) }
    }

    func parsedAgents() throws -> [Int] {
        agents.isEmpty ? [] : try ContextBenchmark.integers(agents, flag: "--agents", in: 1...10_000)
    }

    @Option(help: "A hopper checkpoint for the throughput measurement (default: random weights).")
    var checkpoint: String?

    @OptionGroup var threadOptions: ThreadOptions
    /// Worker threads (default 2).
    var threads: Int { threadOptions.count() }

    /// One agent count's figures, from its own process.
    struct AgentPoint: Codable {
        var agents: Int
        var steps: Int
        var millisecondsPerStep: Double
        var microsecondsPerDecision: Double
        var residentMBPerAgent: Double
        var estimatedMBPerAgent: Double
    }

    func run() throws {
        if let childAgents {
            exitWhenOrphaned()
            return try measureAgents(childAgents)
        }
        // Read before anything is measured: a bad file is refused at once, not minutes later.
        let saved = try checkpoint.map { try Checkpoint.read($0) }
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("decision latency, one thread, full K = 20 window:")
        for (name, configuration) in [
            ("dt-default", ModelConfiguration(stateDimension: 11, actionDimension: 3)),
            (
                "paper",
                ModelConfiguration(stateDimension: 11, actionDimension: 3, embeddingDimension: 256, headCount: 4)
            ),
            ("softmax", ModelConfiguration(stateDimension: 11, actionDimension: 3, attention: .softmax)),
        ] {
            var times = Array(
                try Self.timeDecisions(configuration, count: configuration.contextLength + decisions)
                    .dropFirst(configuration.contextLength))
            times.sort()
            print(
                name.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(
                        format: "p50 %.3f ms   p99 %.3f ms", times[times.count / 2],
                        times[min(times.count - 1, times.count * 99 / 100)]))
        }

        let counts = try parsedAgents()
        if !counts.isEmpty {
            print("many agents: dt-default (K 20), every window sliding, one call a step for all agents, \(threads) threads:")
            print("agents   ms/step   µs/agent-decision   × one agent   resident MB/agent (estimate)")
            var single: Double?
            for count in counts {
                let data = try childOutput(
                    ["bench", "policy", "--child-agents", "\(count)", "--decisions", "\(decisions)", "--threads", "\(threads)"]
                ) { status, _ in ValidationError("the measurement of \(count) agents failed (exit \(status))") }
                let point = try JSONDecoder().decode(AgentPoint.self, from: data)
                if count == 1 { single = point.microsecondsPerDecision }
                let ratio = single.map { point.microsecondsPerDecision / $0 } ?? .nan
                print(
                    String(
                        format: "%6d   %7.3f   %17.2f   %10.3f×   %9.3f (%.3f)", count, point.millisecondsPerStep,
                        point.microsecondsPerDecision, ratio, point.residentMBPerAgent, point.estimatedMBPerAgent))
            }
        }
        let weights: ModelWeights
        let encoding: ContextEncoding
        if let checkpoint, let saved {
            weights = ModelWeights(checkpoint: saved)
            encoding = try saved.contextEncoding(source: checkpoint)
        } else {
            weights = ModelWeights(configuration: ModelConfiguration(stateDimension: 11, actionDimension: 3), seed: 5)
            encoding = .identity(for: weights.configuration, rewardScale: 1000)
        }
        let environments = try (0..<episodes).map { _ in try Hopper() }
        let clock = ContinuousClock()
        var results: [EpisodeResult] = []
        let elapsed = try clock.measure {
            results = try RolloutEvaluation.run(
                weights: weights, encoding: encoding, environments: environments, target: 3600, seed: 0,
                threads: threads)
        }
        let seconds = elapsed / .seconds(1)
        let steps = results.map(\.length).reduce(0, +)
        print(
            String(
                format:
                    "batched evaluation: %d hopper episodes, %d environment steps (mean length %.0f) in %.2f s: %.0f steps/s (%d threads, %@)",
                episodes, steps, Double(steps) / Double(episodes), seconds, Double(steps) / seconds, threads,
                checkpoint == nil ? "random weights" : "trained policy"))
    }

    /// The child process of one agent count: prints an `AgentPoint` as JSON.
    private func measureAgents(_ count: Int) throws {
        let configuration = ModelConfiguration(stateDimension: 11, actionDimension: 3)
        if let problem = configuration.actingMemoryProblem(agents: count, threads: threads) {
            throw ValidationError("--agents \(count): \(problem)")
        }
        let weights = ModelWeights(configuration: configuration, seed: 5)
        let before = residentBytes()
        let policy = DecisionPolicy(
            weights: weights, encoding: .identity(for: configuration), agents: count, threads: threads)
        var random = RandomGenerator(seed: 3)
        var observations = [Float](repeating: 0, count: count * 11)
        var actions = [Float](repeating: 0, count: count * 3)
        let rewards = [Float](repeating: 1, count: count)
        for agent in 0..<count { try policy.reset(agent: agent, targetReturn: 3600) }
        func step() throws {
            for index in observations.indices { observations[index] = random.nextGaussian() }
            var output = actions.mutableSpan
            try policy.act(observations: observations.span, into: &output)
            try policy.record(rewards: rewards.span)
        }
        for _ in 0..<(configuration.contextLength + 2) { try step() }  // every window full and sliding
        let after = residentBytes()
        let steps = max(5, decisions / count)
        var elapsed: UInt64 = 0
        for _ in 0..<steps {
            // Observations are drawn outside the timed call.
            for index in observations.indices { observations[index] = random.nextGaussian() }
            let start = DispatchTime.now().uptimeNanoseconds
            var output = actions.mutableSpan
            try policy.act(observations: observations.span, into: &output)
            elapsed += DispatchTime.now().uptimeNanoseconds - start
            try policy.record(rewards: rewards.span)
        }
        let milliseconds = Double(elapsed) / 1e6 / Double(steps)
        let bound = configuration.actingBytes(agents: count, threads: threads).map { Double($0) } ?? .nan
        let weightBytes = Double(4 * weights.layout.count)
        let point = AgentPoint(
            agents: count, steps: steps, millisecondsPerStep: milliseconds,
            microsecondsPerDecision: milliseconds * 1000 / Double(count),
            residentMBPerAgent: Double(after - before) / 1e6 / Double(count),
            estimatedMBPerAgent: (bound - weightBytes) / 1e6 / Double(count))
        print(String(decoding: try JSONEncoder().encode(point), as: UTF8.self))
    }

    /// This process's resident memory, from /proc/self/statm.
    private func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Milliseconds of each of `count` decisions of one episode of a one-thread policy with
    /// random weights and Gaussian observations (S 11, A 3).
    static func timeDecisions(_ configuration: ModelConfiguration, count: Int) throws -> [Double] {
        let policy = DecisionPolicy(
            weights: ModelWeights(configuration: configuration, seed: 5), encoding: .identity(for: configuration))
        var random = RandomGenerator(seed: 3)
        let observation = UnsafeMutableBufferPointer<Float>.allocate(capacity: 11)
        let action = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3)
        defer {
            observation.deallocate()
            action.deallocate()
        }
        policy.reset(targetReturn: 3600)
        var times: [Double] = []
        times.reserveCapacity(count)
        for _ in 0..<count {
            for j in 0..<11 { observation[j] = random.nextGaussian() }
            let start = DispatchTime.now().uptimeNanoseconds
            try policy.action(for: UnsafeBufferPointer(observation), into: action)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            policy.record(reward: 1)
        }
        return times
    }
}
