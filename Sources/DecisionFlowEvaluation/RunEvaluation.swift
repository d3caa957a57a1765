import DecisionFlowSupport
import Foundation

/// A run's final evaluation under the reference protocol, as `evaluation.json` holds it.
public struct RunEvaluation: Codable, Sendable, Equatable {
    /// The environment the policy was rolled out in.
    public var environment: String
    /// The training step of the evaluated checkpoint.
    public var step: Int
    /// The scores per target, in the reference's order (the expert-level target first).
    public var targets: [TargetScores]

    /// Creates an evaluation; see the properties for the meaning of each value.
    public init(environment: String, step: Int, targets: [TargetScores]) {
        self.environment = environment
        self.step = step
        self.targets = targets
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
