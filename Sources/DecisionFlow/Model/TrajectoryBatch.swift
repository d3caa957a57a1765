/// A batch of context windows, in caller-owned buffers that are filled in place every step.
///
/// Dimension letters: B sequences, T timesteps per sequence (at most the context length),
/// S state width, A action width. Row-major throughout.
public final class TrajectoryBatch {
    /// Capacity: the most sequences the batch can hold.
    public let capacity: Int
    /// The most timesteps per sequence the buffers hold.
    public let timestepCapacity: Int
    /// Timesteps per sequence in use (≤ timestepCapacity): rows are laid out densely as
    /// (count, timesteps), so a rollout whose history is still shorter than K uses fewer.
    public var timesteps: Int {
        didSet {
            precondition(
                timesteps >= 1 && timesteps <= timestepCapacity, "\(timesteps) timesteps; capacity \(timestepCapacity)")
        }
    }
    /// Width of a state, S.
    public let stateDimension: Int
    /// Width of an action, A.
    public let actionDimension: Int

    /// Sequences in use (≤ capacity).
    public var count: Int

    /// (B, T, S) states, already normalized.
    public var states: [Float]
    /// (B, T, A) actions (inputs, and the targets of the loss).
    public var actions: [Float]
    /// (B, T) returns-to-go, already divided by the reward scale.
    public var returnsToGo: [Float]
    /// (B, T) absolute steps in the episode, each below the model's max episode length.
    public var timestepIndices: [Int32]
    /// (B, T) 1 for real steps, 0 for padding.
    public var mask: [Float]

    /// Allocates a batch of `capacity` sequences of `timesteps` steps, all zero.
    public init(capacity: Int, timesteps: Int, stateDimension: Int, actionDimension: Int) {
        self.capacity = capacity
        self.timestepCapacity = timesteps
        self.timesteps = timesteps
        self.stateDimension = stateDimension
        self.actionDimension = actionDimension
        count = capacity
        states = [Float](repeating: 0, count: capacity * timesteps * stateDimension)
        actions = [Float](repeating: 0, count: capacity * timesteps * actionDimension)
        returnsToGo = [Float](repeating: 0, count: capacity * timesteps)
        timestepIndices = [Int32](repeating: 0, count: capacity * timesteps)
        mask = [Float](repeating: 1, count: capacity * timesteps)
    }
}
