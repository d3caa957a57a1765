import DecisionFlowSupport
import Foundation

/// What an evaluation evaluated, so that it can be checked against the run it sits in.
public struct EvaluatedRun: Codable, Sendable, Equatable {
    /// The checkpoint's checksum (`Checkpoint.checksum`).
    public var checkpoint: String
    /// The fingerprint of the run's configuration (`TrainingConfiguration.fingerprint`).
    public var configuration: String
    /// The fingerprint of the data it trained on (`D4RLDataset.fingerprint`), when recorded.
    public var data: String?

    /// Creates a record; see the properties for the meaning of each value.
    public init(checkpoint: String, configuration: String, data: String?) {
        (self.checkpoint, self.configuration, self.data) = (checkpoint, configuration, data)
    }
}

/// A run's final evaluation under the reference protocol, as `evaluation.json` holds it.
public struct RunEvaluation: Codable, Sendable, Equatable {
    /// The environment the policy was rolled out in.
    public var environment: String
    /// The training step of the evaluated checkpoint.
    public var step: Int
    /// The scores per target, in the reference's order (the expert-level target first).
    public var targets: [TargetScores]
    /// What was evaluated; nil in files from DecisionFlow 0.2, which recorded nothing.
    public var evaluated: EvaluatedRun?

    /// Creates an evaluation; see the properties for the meaning of each value.
    public init(environment: String, step: Int, targets: [TargetScores], evaluated: EvaluatedRun? = nil) {
        self.environment = environment
        self.step = step
        self.targets = targets
        self.evaluated = evaluated
    }

    /// Reads `evaluation.json`.
    public static func read(_ path: String) throws -> RunEvaluation {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvaluationError.unreadable(path: path, problem: "cannot be read")
        }
        do {
            return try JSONDecoder().decode(RunEvaluation.self, from: data)
        } catch {
            throw EvaluationError.unreadable(path: path, problem: "is not a run evaluation (\(error))")
        }
    }

    /// Writes `evaluation.json` atomically, pretty-printed with sorted keys.
    ///
    /// - Throws: `FileWriteError` naming `path`; a previous file there is intact.
    public func write(to path: String) throws {
        try AtomicFile.write(try JSONEncoder.prettySorted.encode(self), to: path)
    }
}
