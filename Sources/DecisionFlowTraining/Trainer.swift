import DecisionFlow
import Foundation
import RLData

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

/// The state a checkpoint needs beyond the weights, optimizer and context encoding to resume
/// a run exactly. (Checkpoints written before the encoding existed also hold the state
/// statistics, reward scale and environment here; they are read from the encoding instead.)
public struct TrainingState: Codable, Sendable, Equatable {
    /// Steps taken.
    public var step: Int
    /// The window sampler's generator state, to draw the same windows after a resume.
    public var samplerGenerator: RandomGenerator
    /// The dropout generator's state, to draw the same masks after a resume.
    public var dropoutGenerator: RandomGenerator
    /// The configuration the run was trained with.
    public var configuration: TrainingConfiguration
    /// `D4RLDataset.fingerprint` of the data the run started on; resume refuses other data.
    /// Nil in checkpoints from DecisionFlow 0.1.
    public var dataFingerprint: String?

    /// The checkpoint metadata key this is stored under, as JSON.
    public static let metadataKey = "training"
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
    /// The environment whose scores apply, if known.
    public let environment: String?
    /// Things about the configuration and data worth telling the user, that do not stop
    /// training (a context longer than every episode, which only adds padding).
    public let warnings: [String]
    /// `D4RLDataset.fingerprint` of the training data, saved in checkpoints.
    public let dataFingerprint: String
    /// What a resume changed in the saved configuration, one "field old → new" each.
    public private(set) var changesOnResume: [String] = []
    private let batch: TrajectoryBatch

    /// A fresh run.
    ///
    /// - Throws: `TrainingError` when the configuration is invalid.
    public convenience init(configuration: TrainingConfiguration, dataset: D4RLDataset) throws {
        try self.init(configuration: configuration, dataset: dataset, resuming: nil)
    }

    /// Resumes from a checkpoint written by `checkpoint()`.
    ///
    /// `adjust` may change the fields `ConfigurationField.changeableOnResume` allows (train
    /// longer, another learning rate, ...); changing any other is refused, naming its flag.
    ///
    /// - Throws: `TrainingError` when the checkpoint has no training state, was made for other
    ///   data (its fingerprint differs) or another model, or `adjust` changes a fixed field.
    public convenience init(
        resuming checkpoint: Checkpoint, dataset: D4RLDataset, source: String,
        adjust: (inout TrainingConfiguration) throws -> Void = { _ in }
    ) throws {
        try self.init(configuration: nil, dataset: dataset, resuming: (checkpoint, source), adjust: adjust)
    }

    private init(
        configuration given: TrainingConfiguration?, dataset: D4RLDataset, resuming: (Checkpoint, String)?,
        adjust: (inout TrainingConfiguration) throws -> Void = { _ in }
    ) throws {
        var state: TrainingState?
        if let (checkpoint, source) = resuming {
            guard let json = checkpoint.metadata[TrainingState.metadataKey] else {
                throw TrainingError.runDirectory(
                    path: source,
                    problem: "holds no training state (it was not written by d4rl-run train); it cannot be resumed")
            }
            do {
                state = try JSONDecoder().decode(TrainingState.self, from: Data(json.utf8))
            } catch {
                throw TrainingError.runDirectory(
                    path: source, problem: "has an unreadable training state (\(error)); the checkpoint is corrupt")
            }
        }
        guard var configuration = given ?? state?.configuration else {
            throw TrainingError.mismatch("no configuration")
        }
        // Hashed once: recorded in checkpoints, and compared with the saved one on resume.
        let fingerprint = dataset.fingerprint
        if let state {
            guard state.step >= 0, state.step == resuming?.0.optimizer?.step ?? state.step else {
                throw TrainingError.runDirectory(
                    path: resuming?.1 ?? "checkpoint",
                    problem:
                        "has a training state at step \(state.step) that disagrees with its optimizer (step \(resuming?.0.optimizer?.step ?? -1)); the checkpoint is corrupt, use an earlier one"
                )
            }
            try adjust(&configuration)
            let fixed = configuration.fieldsChanged(from: state.configuration).filter { !$0.changeableOnResume }
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
        if let problem = configuration.problems.first {
            throw TrainingError.badConfiguration(file: "configuration", problem: problem)
        }
        self.configuration = configuration
        if let name = configuration.environment {
            guard let environment = D4RLReferenceScores.environmentName(forID: name) else {
                let known = D4RLReferenceScores.byEnvironment.keys.sorted().joined(separator: ", ")
                throw TrainingError.badConfiguration(
                    file: "configuration", problem: "environment '\(name)' is unknown; known: \(known)")
            }
            if let mismatch = D4RLEnvironmentShape.mismatch(
                environment: environment, observationDimension: dataset.observationDimension,
                actionDimension: dataset.actionDimension)
            {
                throw TrainingError.mismatch(
                    "the configuration names environment \(environment): \(mismatch) (\(dataset.files.joined(separator: ", "))): use a configuration made for this data's environment"
                )
            }
        } else if let environment = dataset.environmentName,
            let mismatch = D4RLEnvironmentShape.mismatch(
                environment: environment, observationDimension: dataset.observationDimension,
                actionDimension: dataset.actionDimension)
        {
            // The environment would come from the files' metadata: a mislabelled file must not
            // be scored (or evaluated) as another environment.
            throw TrainingError.mismatch(
                "the metadata of \(dataset.files.joined(separator: ", ")) (behavior/env_id) says \(environment), but \(mismatch): the file is mislabelled. Set environment in the configuration (--environment) to the one the data came from"
            )
        }
        let modelConfiguration = configuration.modelConfiguration(
            stateDimension: dataset.observationDimension, actionDimension: dataset.actionDimension)
        if let (checkpoint, source) = resuming, checkpoint.configuration != modelConfiguration {
            throw TrainingError.mismatch(
                "\(source) holds a model for \(checkpoint.configuration.summary), but this data and configuration need \(modelConfiguration.summary)"
            )
        }
        if let problem = modelConfiguration.memoryProblem(
            batchCapacity: configuration.batchSize, threads: configuration.threads, training: true)
        {
            throw TrainingError.badConfiguration(file: "configuration", problem: problem)
        }
        model = DecisionTransformer(
            configuration: modelConfiguration, batchCapacity: configuration.batchSize, seed: configuration.seed,
            threads: configuration.threads)
        optimizer = AdamW(layout: model.layout, settings: AdamW.Settings(weightDecay: configuration.weightDecay))
        // A resumed run keeps the encoding it started with (the statistics of the data it
        // was started on).
        let encoding =
            try resuming.map { try $0.0.contextEncoding(source: $0.1) }
            ?? ContextEncoding(dataset: dataset, rewardScale: configuration.rewardScale, for: modelConfiguration)
        sampler = WindowSampler(
            dataset: dataset, contextLength: configuration.contextLength, encoding: encoding,
            sampling: configuration.sampling, discount: configuration.discount, seed: configuration.seed &+ 0x5A_3D1E)
        schedule = WarmupSchedule(learningRate: configuration.learningRate, warmupSteps: configuration.warmupSteps)
        batch = TrajectoryBatch(
            capacity: configuration.batchSize, timesteps: configuration.contextLength,
            stateDimension: dataset.observationDimension, actionDimension: dataset.actionDimension)
        environment =
            configuration.environment.flatMap { D4RLReferenceScores.environmentName(forID: $0) }
            ?? dataset.environmentName
        let longest = dataset.trajectories.map(\.length).max() ?? 0
        warnings =
            longest < configuration.contextLength
            ? [
                "contextLength \(configuration.contextLength) is longer than every episode in the data (the longest has \(longest) steps): every window is padded, which costs time and memory but teaches nothing; a contextLength of \(longest) sees the same data"
            ] : []
        dataFingerprint = fingerprint
        step = 0
        if let (checkpoint, source) = resuming, let state {
            try model.load(checkpoint, source: source)
            guard let saved = checkpoint.optimizer else {
                throw TrainingError.runDirectory(
                    path: source, problem: "holds no optimizer state; it cannot be resumed exactly")
            }
            optimizer = saved
            sampler.generator = state.samplerGenerator
            model.dropoutGenerator = state.dropoutGenerator
            step = state.step
        }
    }

    /// Takes one step: draws a batch, runs forward and backward, clips, updates.
    ///
    /// - Throws: `TrainingError.nonFinite` when the loss or gradient norm is NaN or infinite;
    ///   the weights are then left as they were before this step.
    @discardableResult
    public func trainStep() throws -> StepRecord {
        sampler.fill(batch)
        let learningRate = schedule.learningRate(atStep: step)
        let loss = model.forward(batch, training: true)
        guard loss.isFinite else { throw TrainingError.nonFinite(step: step + 1, what: "loss", lastCheckpoint: nil) }
        model.backward(batch)
        let norm = clipGradientNorm(of: model, maxNorm: configuration.gradientClip)
        guard norm.isFinite else {
            throw TrainingError.nonFinite(step: step + 1, what: "gradient norm", lastCheckpoint: nil)
        }
        optimizer.update(model, learningRate: learningRate)
        step += 1
        return StepRecord(step: step, loss: loss, learningRate: learningRate, gradientNorm: norm)
    }

    /// The training state, for checkpoints.
    public var state: TrainingState {
        TrainingState(
            step: step, samplerGenerator: sampler.generator, dropoutGenerator: model.dropoutGenerator,
            configuration: configuration, dataFingerprint: dataFingerprint)
    }

    /// A checkpoint holding everything needed to resume exactly or to evaluate.
    public func checkpoint() throws -> Checkpoint {
        let json = String(decoding: try JSONEncoder.sorted.encode(state), as: UTF8.self)
        return Checkpoint(
            model: model, optimizer: optimizer, encoding: encoding, environment: environment,
            metadata: [TrainingState.metadataKey: json])
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
