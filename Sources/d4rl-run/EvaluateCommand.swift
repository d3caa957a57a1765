import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import DecisionFlowMPI
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation
import ProcessGroups
import RLData
import RLEnvironments

/// `d4rl-run evaluate`: roll a checkpoint out in its environment and report D4RL scores.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Roll a trained policy out in its environment and report returns and D4RL normalized scores.",
        discussion: """
            Follows the reference evaluation protocol: states normalized with the statistics \
            saved in the checkpoint, a return-to-go that starts at target / scale and drops by \
            reward / scale after every step, timesteps from 0, and the history cut to the last \
            K steps without padding. All episodes of a target run at once, with one batched \
            forward pass per environment step; episode i resets its environment with seed \
            --seed + i, so runs repeat exactly.
            """
    )

    @Option(
        help: "A checkpoint written by `d4rl-run train` or `d4rl-run import`.",
        completion: .file(extensions: ["safetensors"]))
    var checkpoint: String

    @Option(
        help:
            "Environment: a name or gymnasium id (`d4rl-run environments` lists them); a task without a version gets the checkpoint's version. Default: the checkpoint's."
    )
    var env: String?

    @Option(
        help:
            "Target returns in the environment's scale, comma-separated. Default: the environment's targets (`d4rl-run environments` lists them; 0 where it has none)."
    )
    var targets: String?

    @Option(parsing: .unconditional, help: "Episodes per target.")
    var episodes = 10

    @OptionGroup var seedOptions: SeedOptions
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var output: OutputOptions

    /// The first episode's reset seed.
    var seed: UInt64 { seedOptions.seed ?? 0 }

    func validate() throws {
        try requireFlag("episodes", episodes, in: 1...10_000)
        if let env { _ = try environmentFlag("env", env) }
        _ = try targetList()
    }

    /// `--targets`, parsed; nil when not given.
    func targetList() throws -> [Double]? {
        guard let targets else { return nil }
        let values = targets.split(separator: ",", omittingEmptySubsequences: false).map {
            Double($0.trimmingCharacters(in: .whitespaces))
        }
        guard !values.isEmpty, values.allSatisfy({ $0.map { Float($0).isFinite } == true }) else {
            throw ValidationError("--targets takes finite numbers within Float's range, separated by commas, e.g. 3600,1800 (it is '\(targets)')")
        }
        return values.compactMap { $0 }
    }

    func run() throws {
        let saved = try Checkpoint.read(checkpoint)
        for note in saved.notes { standardError("note: \(note)\n") }
        let named = try ReferenceEvaluation.environment(env, checkpoint: saved, source: checkpoint)
        // Under mpirun the episodes are split across the ranks and gathered on every rank;
        // rank 0 prints.
        let group: any ProcessGroup = try MPIProcessGroup.launched() ?? SingleProcess()
        let limit = named?.maxEpisodeSteps ?? 1
        var bar: (target: Double, line: ProgressLine)?
        let clock = ContinuousClock()
        var started = clock.now
        let (environmentName, reports) = try ReferenceEvaluation.evaluate(
            checkpoint: saved, source: checkpoint, environment: env, targets: try targetList(), episodes: episodes, seed: seed,
            threads: threadOptions.count(), group: group
        ) { target, finished, steps in
            if bar?.target != target {
                bar?.line.finish()
                bar = (target, ProgressLine(total: limit, startStep: 0))
                started = clock.now
            }
            bar?.line.update(
                step: min(steps, limit), loss: Float(finished), elapsed: (clock.now - started) / .seconds(1),
                label: "target \(String(format: "%.0f", target)): step", valueLabel: "episodes done")
        }
        bar?.line.finish()
        guard group.isLeader else { return }
        if output.json {
            let encoder = JSONEncoder.prettySorted
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
            return
        }
        print(
            "\(checkpoint) in \(named?.label ?? environmentName): \(episodes) episodes per target, seeds \(seed)…\(seed &+ UInt64(episodes - 1))"
        )
        for report in reports {
            var line = String(
                format: "  target %7.0f   return %8.1f ± %6.1f   length %6.1f", report.target, report.returnMean,
                report.returnStd, report.lengthMean)
            if let score = report.normalizedMean, let spread = report.normalizedStd {
                line += String(format: "   normalized %6.1f ± %5.1f", score, spread)
            }
            print(line)
        }
    }
}
