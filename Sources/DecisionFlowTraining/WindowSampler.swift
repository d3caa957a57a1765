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
/// the data). It only chooses rows: `ContextEncoding.writeWindow` turns them into model input.
///
/// Returns-to-go are the return from each step to the end of its trajectory, discounted by
/// the encoding's `discount` (FACTS.md, Flowformer_RL `ContextDataset`; the encoding carries
/// it so that acting undoes the same rule), scaled once by the encoding. A trajectory that
/// ends before the window is full is padded on the encoding's side. The reference pads
/// states with 0 before normalizing; that value never reaches the loss, because no real token
/// attends to padding (causal attention with right padding, the −10⁴ key mask with left
/// padding).
public struct WindowSampler: Sendable {
    /// The data windows are drawn from.
    public let dataset: D4RLDataset
    /// How raw steps become model inputs.
    public let encoding: ContextEncoding
    /// Timesteps per window, K.
    public let contextLength: Int
    /// How window starts are drawn.
    public let sampling: WindowSampling
    /// The generator windows are drawn from; saved in checkpoints to resume exactly.
    public var generator: RandomGenerator

    /// Returns-to-go of every row, in the encoding's scale, computed once.
    private let scaledReturnsToGo: [Float]
    /// Trajectory start rows, for finding a row's trajectory by binary search.
    private let trajectoryStarts: [Int]

    /// A sampler over `dataset` whose windows `encoding` writes.
    public init(
        dataset: D4RLDataset, contextLength: Int, encoding: ContextEncoding, sampling: WindowSampling = .uniformStart,
        seed: UInt64
    ) {
        precondition(encoding.stateDimension == dataset.observationDimension, "the encoding is for another state width")
        self.dataset = dataset
        self.encoding = encoding
        self.contextLength = contextLength
        self.sampling = sampling
        generator = RandomGenerator(seed: seed)
        scaledReturnsToGo = dataset.returnsToGo(discount: encoding.discount).map(encoding.scaledReturn)
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
        fill(batch, globalCount: batch.count, slice: 0..<batch.count)
    }

    /// Draws the window starts of a global batch of `globalCount` windows, as `fill` would for
    /// a batch that large, and writes only the windows in `slice` into `batch` (whose count
    /// must be `slice.count`). Every process of a data-parallel group draws the same starts
    /// from the same generator state, so together they see exactly one process's windows.
    public mutating func fill(_ batch: TrajectoryBatch, globalCount: Int, slice: Range<Int>) {
        precondition(
            batch.timesteps == contextLength, "batch holds \(batch.timesteps) steps, the sampler \(contextLength)")
        precondition(
            batch.count == slice.count && slice.lowerBound >= 0 && slice.upperBound <= globalCount,
            "slice \(slice) of \(globalCount) does not fit a batch of \(batch.count)")
        for index in 0..<globalCount {
            let (trajectory, row) = drawStart()
            if slice.contains(index) {
                writeWindow(into: batch, sequence: index - slice.lowerBound, trajectory: trajectory, startRow: row)
            }
        }
    }

    /// Writes the window of up to `contextLength` steps that starts at `startRow` (inside
    /// trajectory `trajectory`) into sequence `sequence` of `batch`.
    public func writeWindow(into batch: TrajectoryBatch, sequence: Int, trajectory: Int, startRow: Int) {
        let S = dataset.observationDimension
        let A = dataset.actionDimension
        let episode = dataset.trajectories[trajectory]
        let rows = startRow..<(startRow + min(contextLength, episode.rows.upperBound - startRow))
        dataset.observations.withUnsafeBufferPointer { states in
            dataset.actions.withUnsafeBufferPointer { actions in
                scaledReturnsToGo.withUnsafeBufferPointer { returnsToGo in
                    encoding.writeWindow(
                        into: batch, sequence: sequence,
                        states: UnsafeBufferPointer(rebasing: states[(rows.lowerBound * S)..<(rows.upperBound * S)]),
                        actions: UnsafeBufferPointer(rebasing: actions[(rows.lowerBound * A)..<(rows.upperBound * A)]),
                        scaledReturnsToGo: UnsafeBufferPointer(rebasing: returnsToGo[rows]),
                        firstTimestep: startRow - episode.start)
                }
            }
        }
    }
}

extension ContextEncoding {
    /// The reference encoding of `dataset` for `model`: the data's state statistics (its
    /// std + 1e-6 as divisor), returns divided by `rewardScale`.
    public init(dataset: D4RLDataset, rewardScale: Float, for model: ModelConfiguration) {
        let statistics = dataset.stateStatistics()
        self.init(
            stateMean: statistics.mean, stateScale: statistics.normalizationScale, rewardScale: rewardScale, for: model)
    }
}
