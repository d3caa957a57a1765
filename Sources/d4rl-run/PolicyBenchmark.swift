import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import Foundation
import RLEnvironments

/// `d4rl-run bench policy`: decision latency of the embedding API, and batched evaluation.
struct PolicyBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Decision latency of DecisionPolicy (one thread, full window) and batched evaluation throughput.",
        discussion: """
            Latency: a DecisionPolicy for hopper-sized data (S 11, A 3) with K 20 is fed K \
            steps to fill its window, then --decisions more; each decision (normalize, run the \
            model on 60 tokens, read the action) is timed alone and p50 and p99 are reported. \
            Throughput: --episodes hopper episodes run at once through RolloutEvaluation (one \
            batched forward pass per environment step), with --checkpoint's policy or random \
            weights; environment steps per second over the whole evaluation.
            """
    )

    @Option(parsing: .unconditional, help: "Timed decisions per configuration.")
    var decisions = 500

    @Option(parsing: .unconditional, help: "Parallel episodes for the throughput measurement.")
    var episodes = 100

    func validate() throws {
        try requireFlag("decisions", decisions, in: 1...10_000_000)
        try requireFlag("episodes", episodes, in: 1...10_000)
    }

    @Option(help: "A hopper checkpoint for the throughput measurement (default: random weights).")
    var checkpoint: String?

    @OptionGroup var threadOptions: ThreadOptions
    /// Worker threads (default 2).
    var threads: Int { threadOptions.count() }

    func run() throws {
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

        let weights: ModelWeights
        let encoding: ContextEncoding
        if let checkpoint {
            let saved = try Checkpoint.read(checkpoint)
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

    /// Milliseconds of each of `count` decisions of one episode of a one-thread policy with
    /// random weights and Gaussian observations (S 11, A 3).
    static func timeDecisions(_ configuration: ModelConfiguration, count: Int) throws -> [Double] {
        let model = DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 5, threads: 1)
        let policy = DecisionPolicy(model: model, encoding: .identity(for: configuration))
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
