import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowSupport
import Foundation
import RLData

/// The state a checkpoint needs beyond the weights, optimizer and context encoding to resume
/// a run exactly. Its configuration is the one record of how the run trains: `config.json`
/// is a readable copy that `resume` checks against it.
///
/// (Checkpoints written before the encoding existed also hold the state statistics, reward
/// scale and environment here; they are read from the encoding instead.)
public struct TrainingState: Codable, Sendable, Equatable {
    /// Steps taken.
    public var step: Int
    /// The window sampler's generator state, to draw the same windows after a resume.
    public var samplerGenerator: RandomGenerator
    /// The dropout generator's state, to draw the same masks after a resume.
    public var dropoutGenerator: RandomGenerator
    /// The configuration the run was trained with.
    public var configuration: TrainingConfiguration
    /// Every rank's dropout stream, when the run trains on several processes (nil for one).
    public var rankDropoutGenerators: [RandomGenerator]? = nil
    /// `D4RLDataset.fingerprint` of the data the run started on; resume refuses other data.
    /// Nil in checkpoints from DecisionFlow 0.1.
    public var dataFingerprint: String?

    /// The checkpoint metadata key the state is stored under, as JSON (safetensors metadata
    /// holds strings only).
    static let metadataKey = "training"
}

/// A training run's checkpoint: the model's `Checkpoint` and its typed `TrainingState`,
/// verified against each other when read, so a checkpoint whose parts disagree (a forged
/// header, another run's state) is refused instead of trained on.
public struct RunCheckpoint: Sendable {
    /// The weights, optimizer, context encoding and environment.
    public var checkpoint: Checkpoint
    /// Where the run stands, and how it trains.
    public var state: TrainingState
    /// The run's configuration: the training state's.
    public var configuration: TrainingConfiguration { state.configuration }

    /// A checkpoint of a run, to write (`Trainer.checkpoint()` makes them); read ones come
    /// from `read(_:)` or `init(verifying:source:)`, which check the parts agree.
    init(checkpoint: Checkpoint, state: TrainingState) {
        self.checkpoint = checkpoint
        self.state = state
    }

    /// Reads and verifies the checkpoint at `path`.
    ///
    /// - Throws: `CheckpointError` naming the file when the model checkpoint is unreadable
    ///   (see `Checkpoint.read`), or its training state is missing, unreadable, invalid, or
    ///   disagrees with the model, the optimizer or the context encoding it is stored with.
    public static func read(_ path: String) throws -> RunCheckpoint {
        try RunCheckpoint(verifying: try Checkpoint.read(path), source: path)
    }

    /// Takes the training state out of a model checkpoint and verifies it; `source` names the
    /// file in errors.
    ///
    /// - Throws: `CheckpointError`, as `read(_:)`.
    public init(verifying checkpoint: Checkpoint, source: String) throws {
        func refuse(_ problem: String) -> CheckpointError { CheckpointError(file: source, problem: problem) }
        guard let json = checkpoint.metadata[TrainingState.metadataKey] else {
            throw refuse("holds no training state (it was not written by d4rl-run train); it cannot be resumed")
        }
        let state: TrainingState
        do {
            state = try JSONDecoder().decode(TrainingState.self, from: Data(json.utf8))
        } catch {
            throw refuse("has an unreadable training state (\(error)); the checkpoint is corrupt")
        }
        guard let optimizer = checkpoint.optimizer else {
            throw refuse("holds no optimizer state; it cannot be resumed exactly")
        }
        guard state.step >= 0, state.step == optimizer.step else {
            throw refuse(
                "has a training state at step \(state.step) that disagrees with its optimizer (step \(optimizer.step)); the checkpoint is corrupt: restore it from a backup, or start the run again"
            )
        }
        if let problem = state.configuration.problems.first {
            throw refuse("has a training state whose configuration is invalid: \(problem); the checkpoint is corrupt")
        }
        // The model's shape is stored twice (the header's and the one the configuration
        // gives): both must describe the weights.
        let model = checkpoint.configuration
        let described = state.configuration.modelConfiguration(
            stateDimension: model.stateDimension, actionDimension: model.actionDimension)
        if described != model {
            throw refuse(
                "holds weights of \(model.summary), but its training state's configuration describes another model (\(Self.differences(model, described))); the checkpoint is corrupt or was edited"
            )
        }
        if let streams = state.rankDropoutGenerators, streams.isEmpty || streams.count > 1 << 20 {
            throw refuse("has \(streams.count) per-rank dropout streams in its training state; the checkpoint is corrupt")
        }
        let encoding = try checkpoint.contextEncoding(source: source)
        // The other values stored twice: each copy must agree with the training state's.
        var disagreements: [String] = []
        if optimizer.settings.weightDecay != state.configuration.weightDecay {
            disagreements.append(
                "weightDecay is \(state.configuration.weightDecay) in the training state but \(optimizer.settings.weightDecay) in the optimizer")
        }
        if encoding.rewardScale != state.configuration.rewardScale {
            disagreements.append(
                "rewardScale is \(state.configuration.rewardScale) in the training state but \(encoding.rewardScale) in the context encoding")
        }
        if let named = state.configuration.environment, let stored = checkpoint.environment,
            !RunEnvironment.agrees(configured: named, stored: stored)
        {
            disagreements.append("environment is \(named) in the training state but \(stored) in the policy")
        }
        if !disagreements.isEmpty {
            throw refuse(
                "\(disagreements.joined(separator: "; ")); the checkpoint is corrupt or was edited: restore it from a backup, or start the run again")
        }
        self.init(checkpoint: checkpoint, state: state)
    }

    /// The fields in which two model configurations differ, as "name a against b".
    static func differences(_ a: ModelConfiguration, _ b: ModelConfiguration) -> String {
        func fields(_ configuration: ModelConfiguration) -> [String: String] {
            let data = (try? JSONEncoder.sorted.encode(configuration)) ?? Data()
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return object.mapValues { "\($0)" }
        }
        let (left, right) = (fields(a), fields(b))
        return left.keys.sorted().filter { left[$0] != right[$0] }.map {
            "\($0) \(left[$0] ?? "?") against \(right[$0] ?? "?")"
        }.joined(separator: ", ")
    }

    /// Writes the checkpoint atomically (see `Checkpoint.write(to:)`), the training state in
    /// its header.
    public func write(to path: String) throws {
        var file = checkpoint
        file.metadata[TrainingState.metadataKey] = String(
            decoding: try JSONEncoder.sorted.encode(state), as: UTF8.self)
        try file.write(to: path)
    }
}
