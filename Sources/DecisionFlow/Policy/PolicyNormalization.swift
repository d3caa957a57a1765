import Foundation

/// What a policy needs besides its weights to act in an environment: the state normalization
/// and the reward scale it was trained with. Saved in checkpoints (metadata key `policy`, as
/// JSON) by `d4rl-run train` and `d4rl-run import`.
public struct PolicyNormalization: Codable, Sendable, Equatable {
    /// Per-feature state mean.
    public var stateMean: [Float]
    /// Per-feature divisor: the dataset's std + 1e-6, as the reference normalizes.
    public var stateScale: [Float]
    /// Returns-to-go are divided by this.
    public var rewardScale: Float
    /// The environment the data came from (`hopper`, ...), if known.
    public var environment: String?

    /// The checkpoint metadata key.
    public static let metadataKey = "policy"

    public init(stateMean: [Float], stateScale: [Float], rewardScale: Float, environment: String?) {
        self.stateMean = stateMean
        self.stateScale = stateScale
        self.rewardScale = rewardScale
        self.environment = environment
    }

    /// The JSON stored under `metadataKey`.
    public func json() throws -> String {
        String(decoding: try JSONEncoder.sorted.encode(self), as: UTF8.self)
    }

    /// No normalization: mean 0, divisor 1 (states are fed raw).
    public static func identity(stateDimension: Int, rewardScale: Float = 1) -> PolicyNormalization {
        PolicyNormalization(
            stateMean: [Float](repeating: 0, count: stateDimension),
            stateScale: [Float](repeating: 1, count: stateDimension),
            rewardScale: rewardScale, environment: nil)
    }
}

extension Checkpoint {
    /// The state normalization saved with the weights (`policy` metadata).
    ///
    /// - Throws: `CheckpointError` naming `source` when the entry is missing, unreadable, or of
    ///   the wrong width for the model.
    public func policyNormalization(source: String) throws -> PolicyNormalization {
        guard let json = metadata[PolicyNormalization.metadataKey] else {
            throw CheckpointError(
                file: source,
                problem:
                    "holds no state normalization ('policy' metadata); use a checkpoint written by `d4rl-run train` or `d4rl-run import`"
            )
        }
        let normalization: PolicyNormalization
        do {
            normalization = try JSONDecoder().decode(PolicyNormalization.self, from: Data(json.utf8))
        } catch {
            throw CheckpointError(
                file: source, problem: "has an unreadable state normalization (\(error)); the file is corrupt")
        }
        guard normalization.stateMean.count == configuration.stateDimension,
            normalization.stateScale.count == configuration.stateDimension
        else {
            throw CheckpointError(
                file: source,
                problem:
                    "its state normalization has \(normalization.stateMean.count) features, but the model takes \(configuration.stateDimension)"
            )
        }
        return normalization
    }
}
