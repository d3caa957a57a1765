import DecisionFlow
import RLData

/// How window start steps are drawn.
public enum WindowSampling: String, Codable, Sendable, CaseIterable {
    /// Every step of every trajectory is equally likely as a window start: what the
    /// reference's precomputed windows (one per step, drawn with replacement) give.
    case uniformStart = "uniform-start"
    /// The original Decision Transformer's procedure: a trajectory with probability
    /// proportional to its length, then a start uniform within it. The distribution of
    /// windows is the same as `uniformStart`'s; the random stream, and so a seeded run, differ.
    case lengthWeighted = "length-weighted"
}

/// Fills caller-owned batches with K-step context windows drawn from a `D4RLDataset`,
/// without ever materializing all windows (the reference precomputes every window, K times
/// the data).
///
/// Each window follows the reference's semantics (FACTS.md, Flowformer_RL `ContextDataset`):
/// - states normalized as (s − mean) / (std + 1e-6) with the dataset's statistics;
/// - returns-to-go: the discounted return from each step to the end of its trajectory,
///   divided by `rewardScale`;
/// - timesteps: the absolute step in the episode, clamped to maxEpisodeLength − 1;
/// - a trajectory that ends before the window is full is padded: states 0, actions −10,
///   returns-to-go 0, timesteps 0, mask 0. Flow attention pads on the right (real steps
///   first, as the reference), softmax on the left (as the original Decision Transformer).
///   The reference pads states with 0 before normalizing; that value never reaches the
///   loss, because no real token attends to padding (causal attention with right padding,
///   the −10⁴ key mask with left padding).
public struct WindowSampler: Sendable {
    /// Which side padding goes on.
    public enum Padding: String, Codable, Sendable {
        case right, left
    }

    public let dataset: D4RLDataset
    public let statistics: StateStatistics
    public let contextLength: Int
    public let rewardScale: Float
    public let maxEpisodeLength: Int
    public let padding: Padding
    public let sampling: WindowSampling
    /// The generator windows are drawn from; saved in checkpoints to resume exactly.
    public var generator: RandomGenerator

    /// Returns-to-go of every row (undivided), computed once.
    private let returnsToGo: [Float]
    /// std + 1e-6 per feature: the reference divides by it.
    private let scale: [Float]
    /// Trajectory start rows, for finding a row's trajectory by binary search.
    private let trajectoryStarts: [Int]

    /// A sampler over `dataset`; `statistics` defaults to the dataset's own.
    public init(
        dataset: D4RLDataset, contextLength: Int, rewardScale: Float, maxEpisodeLength: Int, padding: Padding,
        sampling: WindowSampling = .uniformStart, discount: Double = 1, seed: UInt64,
        statistics: StateStatistics? = nil
    ) {
        self.dataset = dataset
        self.statistics = statistics ?? dataset.stateStatistics()
        self.contextLength = contextLength
        self.rewardScale = rewardScale
        self.maxEpisodeLength = maxEpisodeLength
        self.padding = padding
        self.sampling = sampling
        generator = RandomGenerator(seed: seed)
        returnsToGo = dataset.returnsToGo(discount: discount)
        scale = self.statistics.normalizationScale
        trajectoryStarts = dataset.trajectories.map(\.start)
    }

    /// The trajectory holding `row`.
    func trajectoryIndex(ofRow row: Int) -> Int {
        var low = 0
        var high = trajectoryStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if trajectoryStarts[middle] <= row { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// Draws a window start: (trajectory index, start row).
    mutating func drawStart() -> (trajectory: Int, row: Int) {
        switch sampling {
        case .uniformStart:
            let row = Int(generator.next() % UInt64(dataset.count))
            return (trajectoryIndex(ofRow: row), row)
        case .lengthWeighted:
            // Trajectory ∝ length via a uniform row, then a start uniform within it.
            let trajectory = trajectoryIndex(ofRow: Int(generator.next() % UInt64(dataset.count)))
            let chosen = dataset.trajectories[trajectory]
            return (trajectory, chosen.start + Int(generator.next() % UInt64(chosen.length)))
        }
    }

    /// Fills every sequence of `batch` with a freshly drawn window.
    public mutating func fill(_ batch: TrajectoryBatch) {
        precondition(
            batch.timesteps == contextLength, "batch holds \(batch.timesteps) steps, the sampler \(contextLength)")
        for sequence in 0..<batch.count {
            let (trajectory, row) = drawStart()
            writeWindow(into: batch, sequence: sequence, trajectory: trajectory, startRow: row)
        }
    }

    /// Writes the window of `contextLength` steps that starts at `startRow` (inside
    /// trajectory `trajectory`) into sequence `sequence` of `batch`.
    public func writeWindow(into batch: TrajectoryBatch, sequence: Int, trajectory: Int, startRow: Int) {
        let K = contextLength
        let S = dataset.observationDimension
        let A = dataset.actionDimension
        let episode = dataset.trajectories[trajectory]
        let length = min(K, episode.rows.upperBound - startRow)
        let offset = padding == .right ? 0 : K - length  // where the real steps begin
        let base = sequence * K
        for slot in 0..<K {
            let index = base + slot
            let step = slot - offset
            guard step >= 0 && step < length else {
                for j in 0..<S { batch.states[index * S + j] = 0 }
                for j in 0..<A { batch.actions[index * A + j] = -10 }
                batch.returnsToGo[index] = 0
                batch.timestepIndices[index] = 0
                batch.mask[index] = 0
                continue
            }
            let row = startRow + step
            for j in 0..<S {
                batch.states[index * S + j] = (dataset.observations[row * S + j] - statistics.mean[j]) / scale[j]
            }
            for j in 0..<A { batch.actions[index * A + j] = dataset.actions[row * A + j] }
            batch.returnsToGo[index] = returnsToGo[row] / rewardScale
            batch.timestepIndices[index] = Int32(min(row - episode.start, maxEpisodeLength - 1))
            batch.mask[index] = 1
        }
    }
}
