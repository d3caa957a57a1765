import DecisionFlowSupport
import Foundation

/// Whole episodes of a dataset, to be copied into a new D4RL file or Minari dataset (what
/// `d4rl-run slice` writes): the first episodes (or the last) that fit in a number of steps,
/// so the cut always falls between episodes.
public struct DatasetSlice {
    /// The data the episodes come from.
    public let dataset: D4RLDataset
    /// The name the source was given by, for messages and the copy's `metadata/source`.
    public let source: String
    /// The episodes taken, in the dataset's order; empty when not even the first fits.
    public let episodes: [Trajectory]

    /// The first episodes of `dataset` (its last with `fromEnd`) whose steps add up to at most
    /// `maxSteps`.
    public init(of dataset: D4RLDataset, source: String, maxSteps: Int = .max, fromEnd: Bool = false) {
        var chosen: [Trajectory] = []
        var steps = 0
        for trajectory in fromEnd ? dataset.trajectories.reversed() : dataset.trajectories {
            if steps + trajectory.length > maxSteps { break }
            chosen.append(trajectory)
            steps += trajectory.length
        }
        self.dataset = dataset
        self.source = source
        episodes = fromEnd ? chosen.reversed() : chosen
    }

    /// Steps in the episodes taken.
    public var steps: Int { episodes.reduce(0) { $0 + $1.length } }

    /// The dataset rows the episodes cover (they are contiguous).
    public var rows: Range<Int> {
        guard let first = episodes.first, let last = episodes.last else { return 0..<0 }
        return first.start..<last.rows.upperBound
    }

    private var sourceName: String { URL(fileURLWithPath: source).lastPathComponent }

    private func requireEpisodes(writing output: String) throws {
        guard !episodes.isEmpty else {
            throw D4RLError(
                .empty, file: output, problem: "no whole episode of \(source) fits in the steps allowed",
                remedy: "Allow at least the first episode's steps.")
        }
        try Self.requireApart(output: output, from: source)
    }

    /// Refuses an output that is one of the source's files (by identity, whatever the names
    /// or links), or lies inside a Minari source's folder: a slice never writes over, or into,
    /// what it reads. The writers check it; call it first to refuse before loading anything.
    ///
    /// - Throws: `RefusedOverwrite` naming the output.
    public static func requireApart(output: String, from source: String) throws {
        let origin = try DatasetSource.resolve(source)
        var sourceFiles = [origin.hdf5Path]
        if case .minari(let data) = origin {
            sourceFiles.append(DatasetSource.join(data, "metadata.json"))
        }
        for file in sourceFiles where isSameFile(output, file) {
            throw RefusedOverwrite(
                file: output, problem: "is the source file \(file) itself; write the slice to another file")
        }
        if case .minari(let data) = origin, DatasetSource.fileKind(DatasetSource.join(data, "metadata.json")) != .missing {
            // The output, or any folder above it, must not be the source's dataset folder or its data/.
            // Absolute and without `..`; each step up is compared by identity (`isSameFile`).
            var folder = URL(fileURLWithPath: output).standardizedFileURL.path
            for _ in 0..<4096 {
                if isSameFile(folder, data) || isSameFile(folder, FilePath.folder(of: data)) {
                    throw RefusedOverwrite(
                        file: output, problem: "lies inside the source dataset \(source); write the slice somewhere else")
                }
                let parent = FilePath.folder(of: folder)
                if parent == folder { break }
                folder = parent
            }
        }
    }

    /// Writes the episodes as a D4RL file at `output` (atomically, see `TrajectoryWriter`):
    /// every per-step key, `infos/qpos` and `infos/qvel` when the source has them, the
    /// source's metadata with the episode statistics recomputed, and `metadata/source`
    /// saying where the rows came from. The last episode ends with a timeout unless it
    /// terminated.
    public func writeD4RL(to output: String) throws {
        try requireEpisodes(writing: output)
        let rows = self.rows
        let file = try HDF5File.open(try DatasetSource.resolve(source).hdf5Path)
        func infos(_ key: String) throws -> (width: Int, values: [Double])? {
            guard file.kind(of: key) == .dataset else { return nil }
            let column = try file.dataset(key)
            return (column.rowWidth, try column.readRows(rows, as: Double.self))
        }
        let qpos = try infos("infos/qpos")
        let qvel = try infos("infos/qvel")
        let S = dataset.observationDimension
        let A = dataset.actionDimension
        let lastEpisode = episodes[episodes.count - 1]
        let writer = try TrajectoryWriter(
            path: output,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: S, actionDimension: A, recordsNextObservations: dataset.nextObservations != nil,
                qposDimension: qpos?.width, qvelDimension: qvel?.width))
        do {
            for row in rows {
                let local = row - rows.lowerBound
                try writer.append(
                    observation: Array(dataset.observations[(row * S)..<((row + 1) * S)]),
                    action: Array(dataset.actions[(row * A)..<((row + 1) * A)]),
                    reward: dataset.rewards[row], terminal: dataset.terminals[row],
                    timeout: dataset.timeouts[row] || row == rows.upperBound - 1 && lastEpisode.ending != .terminated,
                    nextObservation: dataset.nextObservations.map { Array($0[(row * S)..<((row + 1) * S)]) },
                    qpos: qpos.map { Array($0.values[(local * $0.width)..<((local + 1) * $0.width)]) },
                    qvel: qvel.map { Array($0.values[(local * $0.width)..<((local + 1) * $0.width)]) })
            }
            for (key, value) in dataset.metadata.first ?? [:] { writer.setMetadata(key, value) }
            let returns = SummaryStatistics(episodes.map(\.totalReward))
            writer.setMetadata("episodes", .integer(Int64(episodes.count)))
            writer.setMetadata("return_mean", .real(returns.mean))
            writer.setMetadata("return_min", .real(returns.min))
            writer.setMetadata("return_max", .real(returns.max))
            writer.setMetadata(
                "source",
                .string(
                    "\(sourceName), rows \(rows.lowerBound)..<\(rows.upperBound) (\(episodes.count) whole episodes), copied by d4rl-run slice"
                ))
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Writes the episodes as a Minari dataset with id `id` in the folder `output`
    /// (`MinariDatasetWriter`; infos are not copied). The environment id recorded is the one
    /// the source recorded as `env_id` or `behavior/env_id`, else `environmentID` (the caller
    /// resolves it: `d4rl-run slice` asks the environment catalog for the gymnasium id of the
    /// data's environment). Values are read again from the source at the precision it stores
    /// them and written at that precision (a float64 dataset stays float64), since the loaded
    /// dataset holds float32.
    public func writeMinari(to output: String, id: String, environmentID: String? = nil) throws {
        try requireEpisodes(writing: output)
        let S = dataset.observationDimension
        let A = dataset.actionDimension
        let recorded = ["env_id", "behavior/env_id"].compactMap { key -> String? in
            if case .string(let id)? = dataset.metadata.first?[key] { return id }
            return nil
        }.first
        let gymID = recorded ?? environmentID
        var description = "episodes of \(sourceName), copied by d4rl-run slice"
        if case .string(let layout)? = dataset.metadata.first?["observation_layout"], layout.contains("[") {
            description += "; observations flattened as \(layout)"
        }
        let exact = try SourceSteps(slice: self)
        let writer = try MinariDatasetWriter(
            folder: output,
            configuration: .init(
                observationDimension: S, actionDimension: A, datasetID: id, environmentID: gymID,
                observationSpace: .box(shape: [S], dtype: exact.observationType),
                actionSpace: .box(shape: [A], dtype: exact.actionType), referenceScores: dataset.referenceScores(),
                description: description))
        do {
            for episode in episodes {
                for row in episode.rows {
                    let local = row - rows.lowerBound
                    let last = row == episode.rows.upperBound - 1
                    try writer.appendFloat64(
                        observation: Array(exact.observations[(local * S)..<((local + 1) * S)]),
                        action: Array(exact.actions[(local * A)..<((local + 1) * A)]), reward: exact.rewards[local],
                        terminal: dataset.terminals[row], timeout: dataset.timeouts[row] || last && episode.ending != .terminated,
                        nextObservation: Array(exact.nextObservations[(local * S)..<((local + 1) * S)]))
                }
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }
}

/// The rows a slice copies, read again from its source at the precision the source stores
/// them, with the NumPy dtype of observations and actions there (`float32` or `float64`).
private struct SourceSteps {
    var observations: [Double] = []
    var nextObservations: [Double] = []
    var actions: [Double] = []
    var rewards: [Double] = []
    var observationType = "float32"
    var actionType = "float32"

    init(slice: DatasetSlice) throws {
        let rows = slice.rows
        switch try DatasetSource.resolve(slice.source) {
        case .d4rlFile(let path):
            let file = try HDF5File.open(path)
            guard file.kind(of: "next_observations") == .dataset else {
                throw D4RLError(
                    .missingKey, file: slice.source, key: "next_observations",
                    problem: "is missing, so the last observation of an episode is unknown; Minari stores it",
                    remedy: "Slice it as a D4RL file instead, or from a source with next_observations.")
            }
            func read(_ key: String) throws -> [Double] {
                do {
                    return try file.dataset(key).readRows(rows, as: Double.self)
                } catch let error as HDF5Error {
                    throw D4RLError(
                        .unreadableFile, file: slice.source, key: key, problem: "cannot be read (\(error.stack.last ?? "unknown cause"))",
                        remedy: "The file is probably truncated or corrupt: download or write it again.")
                }
            }
            observations = try read("observations")
            nextObservations = try read("next_observations")
            actions = try read("actions")
            rewards = try read("rewards")
            observationType = Self.dtype(of: try file.dataset("observations"))
            actionType = Self.dtype(of: try file.dataset("actions"))
        case .minari(let data):
            let layout = try MinariDatasetLayout(name: slice.source, dataFolder: data)
            let width = layout.observationDimension
            var start = 0
            for episode in layout.episodes {
                defer { start += episode.steps }
                guard rows.contains(start) else { continue }
                let values = try layout.readExactly(episode)
                observations += values.observations[0..<(episode.steps * width)]
                nextObservations += values.observations[width...]
                actions += values.actions
                rewards += values.rewards
            }
            // Flattened into one Box: float64 if any part is (float32 values convert exactly).
            observationType = layout.observationSpace.leaves.contains { $0.dtype == "float64" } ? "float64" : "float32"
            actionType = layout.actionSpace.leaves.contains { $0.dtype == "float64" } ? "float64" : "float32"
        }
        // Read again, the source must still hold the rows the slice chose (it may have changed
        // on disk since it was loaded).
        guard rewards.count == rows.count, observations.count == nextObservations.count else {
            throw D4RLError(
                .lengthMismatch, file: slice.source, key: "rewards",
                problem: "holds \(rewards.count) of the \(rows.count) rows chosen when it was loaded; it changed on disk meanwhile",
                remedy: "Run the slice again.")
        }
    }

    private static func dtype(of dataset: HDF5Dataset) -> String {
        if case .float(bits: 64) = dataset.elementType { return "float64" }
        return "float32"
    }
}
