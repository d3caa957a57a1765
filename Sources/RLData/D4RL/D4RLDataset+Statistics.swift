/// Mean and standard deviation of each observation feature, for normalizing states.
public struct StateStatistics: Sendable, Equatable, Codable {
    /// Per-feature mean over every row of the dataset.
    public var mean: [Float]
    /// Per-feature population standard deviation (NumPy's `std`, ddof 0).
    public var std: [Float]

    /// The reference implementation's divisor: `std + 1e-6`, so constant features do not
    /// divide by zero. Normalized state = (state − mean) / normalizationScale.
    public var normalizationScale: [Float] { std.map { $0 + 1e-6 } }

    /// Creates statistics from per-feature values.
    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }
}

/// Summary numbers of a set of values (returns or lengths).
public struct SummaryStatistics: Sendable, Equatable, Codable {
    /// The number of values.
    public var count: Int
    /// Their mean.
    public var mean: Double
    /// Population standard deviation (ddof 0).
    public var std: Double
    /// The smallest value.
    public var min: Double
    /// The largest value.
    public var max: Double

    /// Summarizes `values`; all zeros when there are none.
    public init<S: Sequence>(_ values: S) where S.Element == Double {
        var count = 0
        var sum = 0.0
        var low = Double.infinity
        var high = -Double.infinity
        for value in values {
            count += 1
            sum += value
            low = Swift.min(low, value)
            high = Swift.max(high, value)
        }
        self.count = count
        guard count > 0 else {
            (mean, std, min, max) = (0, 0, 0, 0)
            return
        }
        mean = sum / Double(count)
        var squares = 0.0
        for value in values { squares += (value - mean) * (value - mean) }
        std = (squares / Double(count)).squareRoot()
        min = low
        max = high
    }
}

extension D4RLDataset {
    /// Mean and standard deviation of every observation feature, accumulated in Double.
    public func stateStatistics() -> StateStatistics {
        let width = observationDimension
        var sum = [Double](repeating: 0, count: width)
        observations.withUnsafeBufferPointer { values in
            for row in 0..<count {
                for column in 0..<width { sum[column] += Double(values[row * width + column]) }
            }
        }
        let mean = sum.map { $0 / Double(count) }
        var squares = [Double](repeating: 0, count: width)
        observations.withUnsafeBufferPointer { values in
            for row in 0..<count {
                for column in 0..<width {
                    let delta = Double(values[row * width + column]) - mean[column]
                    squares[column] += delta * delta
                }
            }
        }
        return StateStatistics(
            mean: mean.map { Float($0) }, std: squares.map { Float(($0 / Double(count)).squareRoot()) })
    }

    /// Returns-to-go for every row: the discounted sum of the rewards from that step to the
    /// end of its trajectory, `rtg[t] = r[t] + discount · rtg[t + 1]`.
    ///
    /// Accumulated in Double and rounded once, so long episodes lose no precision.
    public func returnsToGo(discount: Double = 1) -> [Float] {
        var result = [Float](repeating: 0, count: count)
        for trajectory in trajectories {
            var running = 0.0
            for row in trajectory.rows.reversed() {
                running = Double(rewards[row]) + discount * running
                result[row] = Float(running)
            }
        }
        return result
    }

    /// Summary of the undiscounted episode returns.
    public var returnStatistics: SummaryStatistics {
        SummaryStatistics(trajectories.map(\.totalReward))
    }

    /// Summary of the episode lengths.
    public var lengthStatistics: SummaryStatistics {
        SummaryStatistics(trajectories.map { Double($0.length) })
    }

    /// The id of the environment the data came from, as the data names it: D4RL's
    /// `metadata/behavior/env_id` (`Hopper-v3`), Minari's `env_spec` id (`Walker2d-v5`), or an
    /// older file's `metadata/env`; nil when none is recorded. `EnvironmentCatalog` (in
    /// RLEnvironments) says which environment, and which version of it, the id means.
    /// With several files, the first file's; `environmentIDs` has each file's.
    public var environmentID: String? { environmentIDs.first ?? nil }

    /// Each file's environment id (`environmentID`), in the order of `files`.
    public var environmentIDs: [String?] {
        metadata.map { fields in
            for key in ["behavior/env_id", "env_id", "env", "environment"] {
                if case .string(let id)? = fields[key], !id.isEmpty { return id }
            }
            return nil
        }
    }

    /// The reference returns the dataset records itself (`ref_min_score` and
    /// `ref_max_score`, as Minari datasets do), or nil.
    public var recordedReferenceScores: D4RLReferenceScores? {
        guard let first = metadata.first, let low = first["ref_min_score"]?.number,
            let high = first["ref_max_score"]?.number, low.isFinite, high.isFinite, high > low
        else { return nil }
        return D4RLReferenceScores(minimum: low, maximum: high)
    }

    /// The reference returns to normalize this data's scores with: `recordedReferenceScores`,
    /// else D4RL's pair for the task `environmentID` names.
    public func referenceScores() -> D4RLReferenceScores? {
        recordedReferenceScores ?? environmentID.flatMap { D4RLReferenceScores.forID($0) }
    }
}
