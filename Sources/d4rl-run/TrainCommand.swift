import ArgumentParser
import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowMPI
import DecisionFlowExperiments
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation
import ProcessGroups
import RLData
import RLEnvironments

/// `d4rl-run train`: train a Decision-Flowformer (or Decision Transformer) on D4RL data.
///
/// Its configuration flags are not declared one by one: they come from
/// `TrainingConfiguration.fields`, the one table of configuration fields, and are parsed
/// here against it (`--help` lists them from the same table).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a Decision-Flowformer or Decision Transformer on D4RL files.",
        usage: "d4rl-run train (--config <file> | --dataset <file> ...) [<configuration-flags>] [--out <dir>] | --resume <dir> [--steps <n>]",
        discussion: """
            Settings come from --config (a JSON preset from configs/), then from the \
            configuration flags below, which override the preset field by field; anything \
            still unset takes the Decision Transformer's defaults. The run directory (--out) \
            receives config.json (everything the run used), log.jsonl (one line every \
            --log-every steps: loss, learning rate, gradient norm, time) and \
            checkpoint.safetensors (replaced atomically every --checkpoint-every steps and at \
            the end). --resume DIR continues a stopped run exactly where its checkpoint left \
            it, with its own configuration; flags given with it may change the schedule, \
            clipping, bookkeeping, evaluation and threads (configs/README.md says which), and \
            each change is recorded in config.json and the log.

            CONFIGURATION FLAGS (one per preset field; configs/README.md describes each):
            \(configurationFlagList)
            """
    )

    /// The configuration flags, one line each, as `--help` shows them.
    static var configurationFlagList: String {
        TrainingConfiguration.fields.filter { !sharedFlagFields.contains($0.name) }.map { field in
            "  --\(field.flag) \(field.valueHint)\n        \(field.help)"
        }.joined(separator: "\n")
    }

    /// Fields whose flags are shared option groups (`--threads`, `--seed`) rather than parsed here.
    static let sharedFlagFields: Set<String> = ["threads", "seed"]

    @Option(help: "A JSON preset (see configs/README.md).", completion: .file(extensions: ["json"]))
    var config: String?

    @Option(help: "Run directory. Default: runs/<preset or dataset>-seed<seed>.")
    var out: String?

    @Option(help: "Continue the run in this directory from its checkpoint.")
    var resume: String?

    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var seedOptions: SeedOptions

    /// The configuration flags, parsed against the field table by `configurationFlags()`.
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp(visibility: .hidden))
    var configurationArguments: [String] = []

    /// The configuration flags given, in order, with their values.
    ///
    /// - Throws: `ValidationError` naming an unknown flag (with the nearest known one), a
    ///   flag given twice, or a value the field cannot take.
    func configurationFlags() throws -> [(field: ConfigurationField, values: [String])] {
        let arguments = configurationArguments
        var result: [(field: ConfigurationField, values: [String])] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ValidationError("unexpected argument '\(argument)'; run `d4rl-run train --help` for the flags")
            }
            var name = String(argument.dropFirst(2))
            var values: [String] = []
            if let equals = name.firstIndex(of: "=") {
                values = [String(name[name.index(after: equals)...])]
                name = String(name[..<equals])
            }
            guard let field = TrainingConfiguration.field(flag: name), !Self.sharedFlagFields.contains(field.name) else {
                let flags = TrainingConfiguration.fields.map(\.flag) + ["config", "out", "resume"]
                let nearest = Suggestions.nearest(to: name, among: flags)
                throw ValidationError(
                    "unknown option '--\(name)'\(nearest.map { " (did you mean '--\($0)'?)" } ?? ""); run `d4rl-run train --help` for the flags"
                )
            }
            if values.isEmpty {
                // A list runs to the next flag; a single value may itself start with one dash (-0.5).
                while index < arguments.count, !arguments[index].hasPrefix("--") {
                    values.append(arguments[index])
                    index += 1
                    if !field.takesList { break }
                }
            }
            if result.contains(where: { $0.field.name == field.name }) {
                throw ValidationError("--\(field.flag) is given twice; give it once")
            }
            var probe = TrainingConfiguration()
            do {
                try probe.set(field, values: values)
            } catch let error as TrainingError {
                throw ValidationError(error.description)
            }
            result.append((field, values))
        }
        return result
    }

    func validate() throws {
        if let out { try requirePath("out", out) }
        let flags = try configurationFlags()
        if resume != nil {
            if config != nil || out != nil {
                throw ValidationError(
                    "--resume continues a run with its own configuration and directory; do not combine it with --config or --out"
                )
            }
            // Fields that decide what is learned cannot change mid-run; name every one given.
            var given = flags.map(\.field)
            if seedOptions.seed != nil, let seed = TrainingConfiguration.field(named: "seed") { given.append(seed) }
            let fixed = TrainingConfiguration.fixedOnResume(given).map { "--\($0.flag)" }
            if !fixed.isEmpty {
                throw ValidationError(
                    "--resume continues a run with what it learned from, so \(fixed.joined(separator: ", ")) cannot change; start a new run (--config \(resume ?? "")/config.json with the flag) instead. Flags --resume accepts: \(TrainingConfiguration.resumableFlags)"
                )
            }
        } else if config == nil, !flags.contains(where: { $0.field.name == "datasets" }) {
            throw ValidationError("name the data: --config configs/NAME.json or --dataset FILE")
        }
    }

    /// The preset with every given flag applied (validated by `TrainingRun.start`), and what an
    /// error in it names: the preset when it is invalid on its own, otherwise the flags that
    /// made it so. The preset is read once.
    func resolvedConfiguration() throws -> (configuration: TrainingConfiguration, source: String, byFlags: Bool) {
        let preset = try config.map { try TrainingConfiguration.read($0) }
        var c = preset ?? TrainingConfiguration()
        let flags = try configurationFlags()
        for (field, values) in flags { try c.set(field, values: values) }
        if let threads = threadOptions.threads { c.threads = threads }
        if let seed = seedOptions.seed { c.seed = seed }
        guard let config, let preset else { return (c, "flags", true) }
        let flagsGiven = !flags.isEmpty || threadOptions.threads != nil || seedOptions.seed != nil
        let byFlags = flagsGiven && preset.problems.isEmpty
        return (c, byFlags ? "flags (over \(config))" : config, byFlags)
    }

    /// Applies the flags given with `--resume` to the run's saved configuration.
    private func applyResumeFlags(to configuration: inout TrainingConfiguration) throws {
        for (field, values) in try configurationFlags() { try configuration.set(field, values: values) }
        if let threads = threadOptions.threads { configuration.threads = threads }
    }

    func run() throws {
        // Started by mpirun (or srun), the processes train one model together; otherwise this
        // process trains alone, exactly as without MPI.
        let group: any ProcessGroup = try MPIProcessGroup.launched() ?? SingleProcess()
        Self.reports = group.isLeader
        let run: TrainingRun
        let source: String  // what a configuration error names
        if let resume {
            run = try TrainingRun.resume(directory: resume, probe: .tool, group: group) { try applyResumeFlags(to: &$0) }
            source = RunDirectory(resume).configurationPath
            note("resuming \(resume) at step \(run.trainer.step) of \(run.trainer.configuration.steps)")
        } else {
            let configuration: TrainingConfiguration
            let byFlags: Bool
            (configuration, source, byFlags) = try resolvedConfiguration()
            // A value the flags made invalid (--steps 0, --dropout 1.5) is a usage error, as
            // for every other flag; the same value in a preset is bad data (TrainingRun.start).
            if byFlags {
                do {
                    _ = try configuration.validated(source: source)
                } catch let error as TrainingError {
                    throw ValidationError(error.description)
                }
            }
            let name =
                config.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
                ?? URL(fileURLWithPath: configuration.datasets.first ?? "run").deletingPathExtension().lastPathComponent
            run = try TrainingRun.start(
                configuration: configuration, directory: out ?? "runs/\(name)-seed\(configuration.seed)", probe: .tool,
                group: group, source: source)
        }
        let trainer = run.trainer
        let c = trainer.configuration
        for warning in trainer.warnings { note("warning: \(warning)") }
        for runNote in run.notes { note("note: \(runNote)") }
        note("run \(run.directory.url.path): \(trainer.model.configuration.summary)")
        note(
            "data \(c.datasets.joined(separator: " + ")): \(trainer.sampler.dataset.count) steps, \(trainer.sampler.dataset.trajectories.count) trajectories; environment \(trainer.environment?.label ?? "unknown")"
        )
        if group.size > 1 {
            note(
                "data parallel: \(group.size) processes, each computing \(trainer.batchSlice.count) of every \(c.batchSize) windows; gradients summed with MPI_Allreduce"
            )
        }
        note(
            "seed \(c.seed), threads \(c.threads), batch \(c.batchSize), lr \(c.learningRate) (warmup \(c.warmupSteps)), \(c.steps) steps, \(trainer.model.layout.count) parameters"
        )

        let progress = ProgressLine(total: c.steps, startStep: trainer.step)
        var recent: [Float] = []
        let records = try run.runMonitored(source: source) {
            record, elapsed in
            recent.append(record.loss)
            if recent.count > 100 { recent.removeFirst() }
            if group.isLeader { progress.update(step: record.step, loss: recent.reduce(0, +) / Float(recent.count), elapsed: elapsed) }
        }
        if group.isLeader { progress.finish() }
        guard group.isLeader else { return }
        let log = TrainingRun.readLog(run.directory.logPath)
        let tail = records.suffix(min(100, records.count))
        let finalLoss = tail.isEmpty ? Float.nan : tail.map(\.loss).reduce(0, +) / Float(tail.count)
        print("trained \(run.directory.url.path) to step \(trainer.step)")
        print(String(format: "  final loss      %.5f (mean of the last %d steps)", finalLoss, tail.count))
        if let first = log.first { print(String(format: "  first log loss  %.5f (step %d)", first.loss, first.step)) }
        if let last = log.last {
            print(
                String(
                    format: "  time            %.1f s, %.1f steps/s", last.elapsedSeconds,
                    Double(records.count) / max(last.elapsedSeconds, 1e-9)))
        }
        if let scored = log.last(where: { $0.normalizedScore != nil }), let score = scored.normalizedScore {
            print(
                String(
                    format: "  normalized      %.1f (D4RL score ×100 at step %d, %d episodes)", score, scored.step,
                    c.evaluationEpisodes))
        }
        print("  checkpoint      \(run.directory.checkpointPath)")
        if group.size > 1 {
            // Compared by every rank at the last checkpoint, which the last step always writes.
            let checksums = run.rankChecksums.map { String($0, radix: 16) }
            print("  processes       \(group.size), parameter checksums by rank: \(checksums.joined(separator: ", "))")
            let traffic = trainer.communication
            if traffic.calls > 0 {
                print(
                    String(
                        format: "  allreduce       %.3f ms/step, %d bytes/step per process (%d calls)",
                        1000 * traffic.seconds / Double(traffic.calls), traffic.bytes / traffic.calls, traffic.calls))
            }
        }
    }

    /// Whether this process prints notes and progress: rank 0, or a process training alone.
    nonisolated(unsafe) private static var reports = true

    private func note(_ text: String) {
        guard Self.reports else { return }
        standardError("\(text)\n")
    }
}
