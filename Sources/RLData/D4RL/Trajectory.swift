/// How a trajectory ended.
public enum TrajectoryEnding: String, Sendable, Codable, Equatable {
    /// `terminals` was set on the last step: the environment ended the episode (a fall).
    case terminated
    /// `timeouts` was set on the last step, or (in v0 files, which have no `timeouts`) the
    /// episode reached `maxEpisodeSteps`: the time limit cut the episode short.
    case truncated
    /// The file ended before any flag: a trailing partial episode. It is kept, so no data is
    /// lost, and counted as truncated in summaries; drop it with
    /// `trajectories.filter { $0.ending != .unfinished }` if it must not be trained on.
    case unfinished
}

/// One episode of a dataset: a contiguous range of rows, with its return.
///
/// A trajectory stores no data of its own; `D4RLDataset` hands out views (array slices
/// sharing the dataset's storage) of its rows.
public struct Trajectory: Sendable, Equatable {
    /// The first row of the episode in the dataset's arrays.
    public var start: Int
    /// The number of steps.
    public var length: Int
    /// How the episode ended.
    public var ending: TrajectoryEnding
    /// The undiscounted sum of the episode's rewards.
    public var totalReward: Double
    /// Which of the dataset's files the episode came from (an index into `files`).
    public var fileIndex: Int

    /// The rows of the episode in the dataset's arrays.
    public var rows: Range<Int> { start..<(start + length) }

    /// Creates a trajectory record; see the properties for the meaning of each value.
    public init(start: Int, length: Int, ending: TrajectoryEnding, totalReward: Double, fileIndex: Int) {
        self.start = start
        self.length = length
        self.ending = ending
        self.totalReward = totalReward
        self.fileIndex = fileIndex
    }
}
