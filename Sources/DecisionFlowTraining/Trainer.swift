import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowSupport
import Foundation
import ProcessGroups
import RLData
import RLEnvironments

/// What one training step measured.
public struct StepRecord: Codable, Sendable, Equatable {
    /// The step just taken, counting from 1.
    public var step: Int
    /// The step's training loss (masked action MSE).
    public var loss: Float
    /// The learning rate the step's update used.
    public var learningRate: Float
    /// Global gradient norm before clipping.
    public var gradientNorm: Float
}

/// Trains a `DecisionTransformer` on windows from a `D4RLDataset`: one step at a time, with
/// the reference's optimizer (AdamW, linear warmup, gradient-norm clipping).
public final class Trainer {
    /// The run's configuration (after any changes made on resume).
    public let configuration: TrainingConfiguration
    /// The model being trained.
    public let model: DecisionTransformer
    /// AdamW with its moments and step count.
    public private(set) var optimizer: AdamW
    /// Draws the training windows and fills the batch.
    public private(set) var sampler: WindowSampler
    /// Steps taken so far.
    public private(set) var step: Int
    /// The learning rate at each step.
    public let schedule: WarmupSchedule
    /// The environment the run is for (`RunEnvironment`'s rule), if known: its scores apply,
    /// its name goes into checkpoints, and periodic evaluation rolls out there.
    public let environment: EnvironmentEntry?
    /// Things about the configuration and data worth telling the user, that do not stop
    /// training (a context longer than every episode, which only adds padding).
    public let warnings: [String]
    /// `D4RLDataset.fingerprint` of the training data, saved in checkpoints.
    public let dataFingerprint: String
    /// What a resume changed in the saved configuration, one "field old → new" each.
    public private(set) var changesOnResume: [String] = []
    /// The processes training this model together; `SingleProcess` unless started by mpirun.
    public let group: any ProcessGroup
    /// This process's rows of every global batch of `configuration.batchSize` windows.
    public let batchSlice: Range<Int>
    private let batch: TrajectoryBatch
    /// Gradients, masked step count and squared-error sum, summed over the group in one call.
    private var reduction: [Float] = []
    /// Time spent in the gradient all-reduce, bytes it summed per process, and how many ran.
    public private(set) var communication: (seconds: Double, bytes: Int, calls: Int) = (0, 0, 0)

    /// A fresh run.
    ///
    /// - Throws: `TrainingError` when the configuration is invalid.
    ///
    /// - Parameters:
    ///   - configuration: what to train.
    ///   - dataset: the data to train on.
    ///   - group: the processes that train together (each draws the same global batch and
    ///     computes its slice); one process by default.
    public convenience init(
        configuration: TrainingConfiguration, dataset: D4RLDataset, group: any ProcessGroup = SingleProcess()
    ) throws {
        try self.init(checked: configuration.validated(source: "configuration"), dataset: dataset, group: group)
    }

    /// A trainer for a configuration its caller has just validated (`TrainingRun.start`);
    /// `source` names it in errors.
    convenience init(
        checked configuration: TrainingConfiguration, dataset: D4RLDataset, group: any ProcessGroup,
        source: String = "configuration"
    ) throws {
        try self.init(configuration: configuration, dataset: dataset, resuming: nil, group: group, source: source)
    }

    /// Resumes from a checkpoint written by `checkpoint()`; `source` names it in errors.
    ///
    /// `adjust` may change the fields `ConfigurationField.changeableOnResume` allows (train
    /// longer, another learning rate, ...); changing any other is refused, naming its flag.
    ///
    /// - Throws: `TrainingError` when the checkpoint was made for other data (its
    ///   fingerprint differs) or another model, or `adjust` changes a fixed field.
    public convenience init(
        resuming checkpoint: RunCheckpoint, dataset: D4RLDataset, source: String,
        group: any ProcessGroup = SingleProcess(), adjust: (inout TrainingConfiguration) throws -> Void = { _ in }
    ) throws {
        try self.init(
            configuration: checkpoint.configuration, dataset: dataset, resuming: (checkpoint, source), group: group,
            adjust: adjust)
    }

    private init(
        configuration given: TrainingConfiguration, dataset: D4RLDataset, resuming: (RunCheckpoint, String)?,
        group: any ProcessGroup, adjust: (inout TrainingConfiguration) throws -> Void = { _ in },
        source: String = "configuration"
    ) throws {
        self.group = group
        let state = resuming?.0.state
        var configuration = given
        // Hashed once: recorded in checkpoints, and compared with the saved one on resume.
        let fingerprint = dataset.fingerprint
        if let state {
            try adjust(&configuration)
            // Checked before comparing: a value JSON cannot hold (NaN) would look like a change
            // of every field. (A fresh run is checked in the branch below.)
            configuration = try configuration.validated(source: "the flags given with --resume")
            let fixed = TrainingConfiguration.fixedOnResume(configuration.fieldsChanged(from: state.configuration))
            if !fixed.isEmpty {
                throw TrainingError.badConfiguration(
                    file: fixed.map { "--\($0.flag)" }.joined(separator: ", "),
                    problem:
                        "cannot change when resuming: the run was trained with \(fixed.map { "\($0.name) \(state.configuration.text(of: $0))" }.joined(separator: ", ")). Start a new run to change it"
                )
            }
            guard configuration.steps > state.step else {
                throw TrainingError.badConfiguration(
                    file: "--steps",
                    problem:
                        "is \(configuration.steps), but the run is already at step \(state.step); pass a larger total to train longer"
                )
            }
            changesOnResume = configuration.fieldsChanged(from: state.configuration).map {
                "\($0.name) \(state.configuration.text(of: $0)) → \(configuration.text(of: $0))"
            }
            if let recorded = state.dataFingerprint, recorded != fingerprint {
                throw TrainingError.mismatch(
                    "the run was trained on data with fingerprint \(recorded), but \(dataset.files.joined(separator: ", ")) now hold data with fingerprint \(fingerprint): the files were replaced or config.json was edited. Restore the original data, or start a new run on this one"
                )
            }
        }
        // A fresh run's configuration was validated by whoever made it: the public
        // initializer, or `TrainingRun.start`. A resumed one just above, once adjusted.
        self.configuration = configuration
        let (runEnvironment, environmentWarning) = try RunEnvironment.resolve(
            configured: configuration.environment, dataset: dataset, source: resuming?.1 ?? source)
        // Periodic evaluation scores rollouts against D4RL's references. Checked here, where
        // the data's environment is known: before a new run writes any file, and before a
        // change made on resume reaches the checkpoint.
        if configuration.evaluateEvery > 0, runEnvironment?.referenceScores == nil {
            let scored = EnvironmentCatalog.standard.entries.filter { $0.referenceScores != nil }.map(\.name)
            throw TrainingError.badConfiguration(
                file: resuming == nil ? source : "the flags given with --resume",
                problem:
                    "evaluateEvery \(configuration.evaluateEvery) needs an environment with D4RL scores (\(scored.joined(separator: ", "))), but \(runEnvironment.map { "the run's is \($0.label)" } ?? "none is known"); set environment, or evaluateEvery 0"
            )
        }
        let modelConfiguration = configuration.modelConfiguration(
            stateDimension: dataset.observationDimension, actionDimension: dataset.actionDimension)
        if let (saved, source) = resuming, saved.checkpoint.configuration != modelConfiguration {
            throw TrainingError.mismatch(
                "\(source) holds a model for \(saved.checkpoint.configuration.summary), but this data and configuration need \(modelConfiguration.summary)"
            )
        }
        guard configuration.batchSize >= group.size else {
            throw TrainingError.badConfiguration(
                file: "--batch-size",
                problem:
                    "is \(configuration.batchSize), fewer windows than the \(group.size) processes training together; each needs at least one")
        }
        batchSlice = group.slice(of: configuration.batchSize)
        if let problem = modelConfiguration.memoryProblem(
            batchCapacity: batchSlice.count, threads: configuration.threads, training: true)
        {
            throw TrainingError.badConfiguration(file: "configuration", problem: problem)
        }
        model = DecisionTransformer(
            configuration: modelConfiguration, batchCapacity: batchSlice.count, seed: configuration.seed,
            threads: configuration.threads)
        if let stream = dropoutGenerator(seed: configuration.seed, rank: group.rank) { model.dropoutGenerator = stream }
        optimizer = AdamW(layout: model.layout, settings: AdamW.Settings(weightDecay: configuration.weightDecay))
        // A resumed run keeps the encoding it started with (the statistics of the data it
        // was started on).
        var encoding =
            try resuming.map { try $0.0.checkpoint.contextEncoding(source: $0.1) }
            ?? ContextEncoding(dataset: dataset, rewardScale: configuration.rewardScale, for: modelConfiguration)
        // The encoding carries the discount, so a checkpoint acts by the rule it was trained
        // on (a run started before it was recorded gets it here, from its configuration).
        encoding.discount = configuration.discount
        sampler = WindowSampler(
            dataset: dataset, contextLength: configuration.contextLength, encoding: encoding,
            sampling: configuration.sampling, seed: configuration.seed &+ 0x5A_3D1E)
        schedule = WarmupSchedule(learningRate: configuration.learningRate, warmupSteps: configuration.warmupSteps)
        batch = TrajectoryBatch(
            capacity: batchSlice.count, timesteps: configuration.contextLength,
            stateDimension: dataset.observationDimension, actionDimension: dataset.actionDimension)
        environment = runEnvironment
        let longest = dataset.trajectories.map(\.length).max() ?? 0
        warnings =
            [environmentWarning].compactMap { $0 }
            + (longest < configuration.contextLength
                ? [
                    "contextLength \(configuration.contextLength) is longer than every episode in the data (the longest has \(longest) steps): every window is padded, which costs time and memory but teaches nothing; a contextLength of \(longest) sees the same data"
                ] : [])
        dataFingerprint = fingerprint
        step = 0
        if let (saved, source) = resuming, let state {
            // RunCheckpoint(verifying:) requires an optimizer; this keeps any other path honest.
            guard let savedOptimizer = saved.checkpoint.optimizer else {
                throw CheckpointError(file: source, problem: "holds no optimizer state; it cannot be resumed exactly")
            }
            try model.load(saved.checkpoint, source: source)
            optimizer = savedOptimizer
            sampler.generator = state.samplerGenerator
            // Each rank continues its own stream. A checkpoint from another process count has
            // none for the ranks other than 0, which keep the derived stream set above.
            if let streams = state.rankDropoutGenerators, streams.count == group.size {
                model.dropoutGenerator = streams[group.rank]
            } else if group.rank == 0 {
                model.dropoutGenerator = state.dropoutGenerator
            }
            step = state.step
        }
    }

    /// Takes one step: draws a batch, runs forward and backward, clips, updates.
    ///
    /// - Throws: `TrainingError.nonFinite` when the loss or gradient norm is NaN or infinite;
    ///   the weights are then left as they were before this step.
    @discardableResult
    public func trainStep() throws -> StepRecord {
        sampler.fill(batch, globalCount: configuration.batchSize, slice: batchSlice)
        let learningRate = schedule.learningRate(atStep: step)
        let localLoss = model.forward(batch, training: true)
        // Several processes need the global batch's loss, which only the all-reduce gives.
        let loss = group.size == 1 ? localLoss : try backwardAcrossGroup()
        guard loss.isFinite else { throw TrainingError.nonFinite(step: step + 1, what: "loss", lastCheckpoint: nil) }
        if group.size == 1 { model.backward(batch) }
        let norm = clipGradientNorm(of: model, maxNorm: configuration.gradientClip)
        guard norm.isFinite else {
            throw TrainingError.nonFinite(step: step + 1, what: "gradient norm", lastCheckpoint: nil)
        }
        optimizer.update(model, learningRate: learningRate)
        step += 1
        return StepRecord(step: step, loss: loss, learningRate: learningRate, gradientNorm: norm)
    }

    /// The data-parallel backward pass: the gradients of this slice's summed squared errors,
    /// summed over the group together with the masked step counts and the error sums (one
    /// all-reduce), then divided by the global step count, so every process holds the
    /// gradient of the global batch's loss. Returns that loss.
    private func backwardAcrossGroup() throws -> Float {
        model.backward(batch, normalizingSteps: 1)
        let count = model.layout.count
        if reduction.count != count + 2 { reduction = [Float](repeating: 0, count: count + 2) }
        model.withGradients { gradients in
            for index in 0..<count { reduction[index] = gradients[index] }
        }
        reduction[count] = Float(model.lastActionError.steps)
        reduction[count + 1] = model.lastActionError.sum
        let clock = ContinuousClock()
        let started = clock.now
        try reduction.withUnsafeMutableBufferPointer { try group.allReduceSum($0) }
        communication.seconds += (clock.now - started) / .seconds(1)
        communication.bytes += reduction.count * MemoryLayout<Float>.size
        communication.calls += 1
        let steps = reduction[count]
        let scale: Float = steps > 0 ? 1 / steps : 0
        model.withMutableGradients { gradients in
            for index in 0..<count { gradients[index] = reduction[index] * scale }
        }
        return steps > 0 ? reduction[count + 1] / (steps * Float(model.configuration.actionDimension)) : 0
    }

    /// The training state, for checkpoints.
    public var state: TrainingState {
        TrainingState(
            step: step, samplerGenerator: sampler.generator, dropoutGenerator: model.dropoutGenerator,
            configuration: configuration, dataFingerprint: dataFingerprint)
    }

    /// A checksum of the parameters (FNV-1a 64 of their bytes): equal on every process of a
    /// group as long as they train in lockstep.
    public var parameterChecksum: UInt64 {
        var hash = FNV1a64()
        model.withParameters { span in span.withUnsafeBufferPointer { hash.add(UnsafeRawBufferPointer($0)) } }
        return hash.value
    }

    /// Every rank's parameter checksum and dropout stream, in rank order, gathered in one
    /// call: every process of the group must call it together.
    public func gatherRanks() throws -> (checksums: [UInt64], dropoutGenerators: [RandomGenerator]) {
        let (a, b, c, d) = model.dropoutGenerator.state
        let words = try group.allGather([parameterChecksum, a, b, c, d])
        let ranks = 0..<(words.count / 5)
        return (
            ranks.map { words[5 * $0] },
            ranks.map { rank in
                var generator = RandomGenerator(seed: 0)
                generator.state = (words[5 * rank + 1], words[5 * rank + 2], words[5 * rank + 3], words[5 * rank + 4])
                return generator
            }
        )
    }

    /// A checkpoint holding everything needed to resume exactly or to evaluate; with several
    /// processes, pass every rank's dropout stream (`gatherRanks()`) so each can continue its own.
    public func checkpoint(rankDropoutGenerators: [RandomGenerator]? = nil) -> RunCheckpoint {
        var state = self.state
        state.rankDropoutGenerators = rankDropoutGenerators
        return RunCheckpoint(
            checkpoint: Checkpoint(model: model, optimizer: optimizer, encoding: encoding, environment: environment?.name),
            state: state)
    }

    /// How the model's inputs are encoded: what a policy needs besides the weights to act.
    public var encoding: ContextEncoding { sampler.encoding }

}

extension D4RLDataset {
    /// FNV-1a 64 of every array training reads (observations, actions, rewards, terminals,
    /// timeouts), in hex: two datasets with the same fingerprint train identically.
    public var fingerprint: String {
        var hash = FNV1a64()
        for array in [observations, actions, rewards] { array.withUnsafeBytes { hash.add($0) } }
        for flags in [terminals, timeouts] {
            flags.map { UInt8($0 ? 1 : 0) }.withUnsafeBytes { hash.add($0) }
        }
        return hash.hex
    }
}
