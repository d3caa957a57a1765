import ArgumentParser
import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowTraining
import Foundation
import RLData
import RLEnvironments

/// `d4rl-run train`: train a Decision-Flowformer (or Decision Transformer) on D4RL data.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a Decision-Flowformer or Decision Transformer on D4RL files.",
        discussion: """
            Settings come from --config (a JSON preset from configs/), then from the flags \
            below, which override the preset field by field; anything still unset takes the \
            Decision Transformer's defaults. The run directory (--out) receives config.json \
            (everything the run used), log.jsonl (one line every --log-every steps: loss, \
            learning rate, gradient norm, time) and checkpoint.safetensors (replaced atomically \
            every --checkpoint-every steps and at the end). --resume DIR continues a stopped \
            run exactly where its checkpoint left it; pass --steps to train it longer.
            """
    )

    @Option(help: "A JSON preset (see configs/README.md).", completion: .file(extensions: ["json"]))
    var config: String?

    @Option(
        parsing: .upToNextOption, help: "D4RL files, concatenated in order.",
        completion: .file(extensions: ["hdf5", "h5"]))
    var dataset: [String] = []

    @Option(help: "Run directory. Default: runs/<preset or dataset>-seed<seed>.")
    var out: String?

    @Option(help: "Continue the run in this directory from its checkpoint.")
    var resume: String?

    @Option(help: "Total training steps.") var steps: Int?
    @Option(help: "Random seed (weights, windows, dropout).") var seed: UInt64?
    @Option(help: "Worker threads; a run is bit-for-bit reproducible for a given seed and thread count.") var threads:
        Int?
    @Option(help: "Environment for normalized scores: hopper, halfcheetah, walker2d, ant.") var environment: String?
    @Option(help: "Attention: flow (Decision-Flowformer) or softmax (Decision Transformer).") var attention:
        AttentionKind?
    @Option(help: "Context length K in timesteps.") var contextLength: Int?
    @Option(help: "Embedding width.") var embeddingDimension: Int?
    @Option(help: "Transformer blocks.") var layerCount: Int?
    @Option(help: "Attention heads.") var headCount: Int?
    @Option(help: "MLP width (default 4 × embedding width).") var mlpDimension: Int?
    @Option(help: "MLP activation: relu or gelu.") var activation: Activation?
    @Option(help: "Dropout probability.") var dropout: Float?
    @Option(help: "Timestep embedding rows (episode length limit).") var maxEpisodeLength: Int?
    @Option(help: "Sequences per batch.") var batchSize: Int?
    @Option(help: "Peak learning rate.") var learningRate: Float?
    @Option(help: "AdamW weight decay.") var weightDecay: Float?
    @Option(help: "Linear warmup steps.") var warmupSteps: Int?
    @Option(help: "Global gradient-norm clip.") var gradientClip: Float?
    @Option(help: "Returns-to-go are divided by this.") var rewardScale: Float?
    @Option(help: "Discount of the returns-to-go.") var discount: Double?
    @Option(help: "Window starts: uniform-start or length-weighted.") var sampling: WindowSampling?
    @Option(help: "Episode limit for files without timeouts (D4RL v0).") var maxEpisodeSteps: Int?
    @Option(help: "Checkpoint every this many steps.") var checkpointEvery: Int?
    @Option(help: "Log every this many steps.") var logEvery: Int?
    @Option(help: "Evaluate in the environment every this many steps and at the end (0: never).") var evaluateEvery:
        Int?
    @Option(help: "Episodes per evaluation during training.") var evaluationEpisodes: Int?
    @Option(help: "Target return of evaluations during training (environment scale).") var evaluationTarget: Double?

    func validate() throws {
        if resume != nil, config != nil || !dataset.isEmpty || out != nil {
            throw ValidationError(
                "--resume continues a run with its own configuration and data; do not combine it with --config, --dataset or --out"
            )
        }
        if resume == nil, config == nil, dataset.isEmpty {
            throw ValidationError("name the data: --config configs/NAME.json or --dataset FILE")
        }
    }

    /// The preset with every given flag applied.
    func resolvedConfiguration() throws -> TrainingConfiguration {
        var c = try config.map { try TrainingConfiguration.read($0) } ?? TrainingConfiguration()
        if !dataset.isEmpty { c.datasets = dataset }
        if let steps { c.steps = steps }
        if let seed { c.seed = seed }
        if let threads { c.threads = threads }
        if let environment { c.environment = environment }
        if let attention { c.attention = attention }
        if let contextLength { c.contextLength = contextLength }
        if let embeddingDimension { c.embeddingDimension = embeddingDimension }
        if let layerCount { c.layerCount = layerCount }
        if let headCount { c.headCount = headCount }
        if let mlpDimension { c.mlpDimension = mlpDimension }
        if let activation { c.activation = activation }
        if let dropout { c.dropout = dropout }
        if let maxEpisodeLength { c.maxEpisodeLength = maxEpisodeLength }
        if let batchSize { c.batchSize = batchSize }
        if let learningRate { c.learningRate = learningRate }
        if let weightDecay { c.weightDecay = weightDecay }
        if let warmupSteps { c.warmupSteps = warmupSteps }
        if let gradientClip { c.gradientClip = gradientClip }
        if let rewardScale { c.rewardScale = rewardScale }
        if let discount { c.discount = discount }
        if let sampling { c.sampling = sampling }
        if let maxEpisodeSteps { c.maxEpisodeSteps = maxEpisodeSteps }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let logEvery { c.logEvery = logEvery }
        if let evaluateEvery { c.evaluateEvery = evaluateEvery }
        if let evaluationEpisodes { c.evaluationEpisodes = evaluationEpisodes }
        if let evaluationTarget { c.evaluationTarget = evaluationTarget }
        if let problem = c.problems.first {
            throw TrainingError.badConfiguration(file: config ?? "flags", problem: problem)
        }
        return c
    }

    func run() throws {
        let run: TrainingRun
        if let resume {
            let saved = try TrainingRun.savedConfiguration(in: resume)
            let data = try D4RLDataset(
                files: saved.datasets, options: D4RLLoadOptions(maxEpisodeSteps: saved.maxEpisodeSteps))
            run = try TrainingRun.resume(directory: resume, dataset: data, steps: steps)
            note("resuming \(resume) at step \(run.trainer.step) of \(run.trainer.configuration.steps)")
        } else {
            let configuration = try resolvedConfiguration()
            let data = try D4RLDataset(
                files: configuration.datasets, options: D4RLLoadOptions(maxEpisodeSteps: configuration.maxEpisodeSteps))
            let name =
                config.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
                ?? URL(fileURLWithPath: configuration.datasets[0]).deletingPathExtension().lastPathComponent
            run = try TrainingRun.start(
                configuration: configuration, dataset: data, directory: out ?? "runs/\(name)-seed\(configuration.seed)")
        }
        let trainer = run.trainer
        let c = trainer.configuration
        for warning in trainer.warnings { note("warning: \(warning)") }
        note("run \(run.directory.path): \(trainer.model.configuration.summary)")
        note(
            "data \(c.datasets.joined(separator: " + ")): \(trainer.sampler.dataset.count) steps, \(trainer.sampler.dataset.trajectories.count) trajectories; environment \(trainer.environment ?? "unknown")"
        )
        note(
            "seed \(c.seed), threads \(c.threads), batch \(c.batchSize), lr \(c.learningRate) (warmup \(c.warmupSteps)), \(c.steps) steps, \(trainer.model.layout.count) parameters"
        )

        let progress = ProgressLine(total: c.steps, startStep: trainer.step)
        var recent: [Float] = []
        let evaluator = try periodicEvaluator(for: trainer)
        let records = try run.run(
            onStep: { record, elapsed in
                recent.append(record.loss)
                if recent.count > 100 { recent.removeFirst() }
                progress.update(step: record.step, loss: recent.reduce(0, +) / Float(recent.count), elapsed: elapsed)
            }, evaluate: evaluator)
        progress.finish()
        let log = TrainingRun.readLog(run.logPath)
        let tail = records.suffix(min(100, records.count))
        let finalLoss = tail.isEmpty ? Float.nan : tail.map(\.loss).reduce(0, +) / Float(tail.count)
        print("trained \(run.directory.path) to step \(trainer.step)")
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
        print("  checkpoint      \(run.checkpointPath)")
    }

    /// Rolls a copy of the trainer's current policy out in the data's environment; nil when
    /// evaluation is off.
    private func periodicEvaluator(for trainer: Trainer) throws -> ((Trainer) throws -> Double)? {
        let c = trainer.configuration
        guard c.evaluateEvery > 0 else { return nil }
        guard let name = trainer.environment, D4RLReferenceScores.forEnvironment(name) != nil else {
            throw TrainingError.badConfiguration(
                file: config ?? "flags",
                problem:
                    "evaluateEvery needs an environment with D4RL scores (hopper, halfcheetah, walker2d); set environment"
            )
        }
        let environments = try (0..<c.evaluationEpisodes).map { _ in try EnvironmentRegistry.make(name) }
        let target = c.evaluationTarget ?? D4RLReferenceScores.evaluationTargets[name]?.first ?? 0
        return { trainer in
            let model = DecisionTransformer(
                checkpoint: Checkpoint(model: trainer.model), batchCapacity: c.evaluationEpisodes, threads: c.threads)
            let episodes = try RolloutEvaluation.run(
                model: model, encoding: trainer.encoding, environments: environments, target: target, seed: 0)
            return RolloutEvaluation.report(target: target, episodes: episodes, environment: name).normalizedMean
                ?? .nan
        }
    }

    private func note(_ text: String) {
        FileHandle.standardError.write(Data("\(text)\n".utf8))
    }
}

extension AttentionKind: ExpressibleByArgument {}
extension Activation: ExpressibleByArgument {}
extension WindowSampling: ExpressibleByArgument {}

/// A one-line progress display on stderr: redrawn in place on a terminal, a plain line every
/// 10% otherwise (logs and CI).
final class ProgressLine {
    let total: Int
    let startStep: Int
    let interactive = isatty(STDERR_FILENO) != 0
    private var lastDraw = -1.0
    private var lastDecile = -1

    init(total: Int, startStep: Int) {
        self.total = total
        self.startStep = startStep
    }

    func update(step: Int, loss: Float, elapsed: Double, label: String = "step", valueLabel: String = "loss") {
        let done = step - startStep
        let rate = Double(done) / max(elapsed, 1e-9)
        let remaining = Double(total - step) / max(rate, 1e-9)
        let value = valueLabel == "loss" ? String(format: "loss %.4f", loss) : "\(valueLabel) \(Int(loss))"
        let line = String(
            format: "%@ %d/%d  %@  %.1f steps/s  ETA %@", label, step, total, value, rate, Self.clock(remaining))
        if interactive {
            guard elapsed - lastDraw >= 0.1 || step == total else { return }
            lastDraw = elapsed
            FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        } else {
            let decile = step * 10 / max(total, 1)
            guard decile != lastDecile else { return }
            lastDecile = decile
            FileHandle.standardError.write(Data("\(line)\n".utf8))
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(seconds.rounded())
        return total >= 3600
            ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
            : String(format: "%d:%02d", total / 60, total % 60)
    }
}
