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

    /// No normalization: mean 0, divisor 1 (states are fed raw).
    public static func identity(stateDimension: Int, rewardScale: Float = 1) -> PolicyNormalization {
        PolicyNormalization(
            stateMean: [Float](repeating: 0, count: stateDimension),
            stateScale: [Float](repeating: 1, count: stateDimension),
            rewardScale: rewardScale, environment: nil)
    }
}
