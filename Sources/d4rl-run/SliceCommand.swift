import ArgumentParser
import Foundation
import RLData

/// `d4rl-run slice`: copy whole episodes of a dataset into a smaller D4RL file or a Minari
/// dataset.
struct SliceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slice",
        abstract: "Copy whole episodes of a dataset into a new D4RL file or Minari dataset.",
        discussion: """
            Episodes are taken from the start (or, with --from-end, the end) of the source \
            until --max-steps would be exceeded, so the cut always falls on an episode \
            boundary. Every per-step key is copied, with infos/qpos and infos/qvel when \
            present. The source's metadata is kept, its episode statistics are recomputed, and \
            metadata/source records where the rows came from. With --minari-id the episodes \
            are written as a Minari dataset into the folder --output instead (which the \
            minari package loads; infos are not copied); the source may be either kind.
            """
    )

    @Argument(help: "The D4RL file or Minari dataset to copy from.", completion: .file())
    var source: String

    @Option(name: .shortAndLong, help: "The file to write (with --minari-id, the dataset folder).")
    var output: String

    @Option(help: "The most steps to copy (default: every episode).")
    var maxSteps: Int?

    @Option(help: "Write a Minari dataset with this id (e.g. mysim/hopper/medium-v0) instead of a D4RL file.")
    var minariId: String?

    @Flag(help: "Take the last episodes instead of the first.")
    var fromEnd = false

    func validate() throws {
        if let maxSteps { try requireFlag("max-steps", maxSteps, in: 1...Int.max) }
        if let minariId, minariId.isEmpty || minariId.hasPrefix("/") || minariId.split(separator: "/").contains("..") {
            throw ValidationError("--minari-id '\(minariId)' must be a relative id such as mysim/hopper/medium-v0")
        }
    }

    func run() throws {
        // The same file by identity (device and inode), whatever the names: writing a slice
        // over its own source would replace the data with a part of it.
        var sourceStatus = stat()
        var outputStatus = stat()
        if stat(source, &sourceStatus) == 0, stat(output, &outputStatus) == 0,
            sourceStatus.st_dev == outputStatus.st_dev, sourceStatus.st_ino == outputStatus.st_ino
        {
            throw ValidationError(
                "--output \(output) is the source file \(source) itself; write the slice to another file")
        }
        try FileProbe.check([source])
        let dataset = try D4RLDataset(file: source, options: D4RLLoadOptions(loadNextObservations: true))
        let maxSteps = self.maxSteps ?? Int.max
        var chosen: [Trajectory] = []
        var steps = 0
        for trajectory in fromEnd ? dataset.trajectories.reversed() : dataset.trajectories {
            if steps + trajectory.length > maxSteps { break }
            chosen.append(trajectory)
            steps += trajectory.length
        }
        if fromEnd { chosen.reverse() }
        guard let first = chosen.first, let last = chosen.last else {
            throw ValidationError("--max-steps \(maxSteps) is shorter than the first episode")
        }
        let rows = first.start..<last.rows.upperBound
        if let minariId {
            try writeMinari(dataset, episodes: chosen, id: minariId)
            print("wrote \(output): Minari dataset \(minariId), \(steps) steps, \(chosen.count) episodes of \(sourceName(source))")
            return
        }

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
        let writer = try TrajectoryWriter(
            path: output,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: S, actionDimension: A,
                recordsNextObservations: dataset.nextObservations != nil,
                qposDimension: qpos?.width, qvelDimension: qvel?.width))
        do {
            for row in rows {
                let local = row - rows.lowerBound
                try writer.append(
                    observation: Array(dataset.observations[(row * S)..<((row + 1) * S)]),
                    action: Array(dataset.actions[(row * A)..<((row + 1) * A)]),
                    reward: dataset.rewards[row], terminal: dataset.terminals[row],
                    timeout: dataset.timeouts[row] || row == last.rows.upperBound - 1 && last.ending != .terminated,
                    nextObservation: dataset.nextObservations.map { Array($0[(row * S)..<((row + 1) * S)]) },
                    qpos: qpos.map { Array($0.values[(local * $0.width)..<((local + 1) * $0.width)]) },
                    qvel: qvel.map { Array($0.values[(local * $0.width)..<((local + 1) * $0.width)]) })
            }
            for (key, value) in dataset.metadata.first ?? [:] { writer.setMetadata(key, value) }
            let returns = SummaryStatistics(chosen.map(\.totalReward))
            writer.setMetadata("episodes", .integer(Int64(chosen.count)))
            writer.setMetadata("return_mean", .real(returns.mean))
            writer.setMetadata("return_min", .real(returns.min))
            writer.setMetadata("return_max", .real(returns.max))
            let sourceName = URL(fileURLWithPath: source).lastPathComponent
            writer.setMetadata(
                "source",
                .string(
                    "\(sourceName), rows \(rows.lowerBound)..<\(rows.upperBound) (\(chosen.count) whole episodes), copied by d4rl-run slice"
                ))
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        print(
            "wrote \(output): \(steps) steps, \(chosen.count) episodes (rows \(rows.lowerBound)..<\(rows.upperBound) of \(sourceName(source)))"
        )
    }

    private func sourceName(_ path: String) -> String { URL(fileURLWithPath: path).lastPathComponent }

    /// Writes `episodes` of `dataset` as a Minari dataset in `output`.
    private func writeMinari(_ dataset: D4RLDataset, episodes: [Trajectory], id: String) throws {
        let S = dataset.observationDimension
        let A = dataset.actionDimension
        let environment = dataset.environmentName
        // The gymnasium id the source recorded, else the v4 id of its environment.
        let recorded = ["env_id", "behavior/env_id"].compactMap { key -> String? in
            if case .string(let id)? = dataset.metadata.first?[key] { return id }
            return nil
        }.first
        let gymID =
            recorded
            ?? environment.flatMap {
                ["hopper": "Hopper-v4", "halfcheetah": "HalfCheetah-v4", "walker2d": "Walker2d-v4", "ant": "Ant-v4"][$0]
            }
        var description = "episodes of \(sourceName(source)), copied by d4rl-run slice"
        if case .string(let layout)? = dataset.metadata.first?["observation_layout"], layout.contains("[") {
            description += "; observations flattened as \(layout)"
        }
        let writer = try MinariDatasetWriter(
            folder: output,
            configuration: .init(
                observationDimension: S, actionDimension: A, datasetID: id, environmentID: gymID,
                referenceScores: dataset.referenceScores(), description: description))
        do {
            for episode in episodes {
                for row in episode.rows {
                    let next: [Float]
                    if let nextObservations = dataset.nextObservations {
                        next = Array(nextObservations[(row * S)..<((row + 1) * S)])
                    } else if row + 1 < episode.rows.upperBound {
                        next = Array(dataset.observations[((row + 1) * S)..<((row + 2) * S)])
                    } else {
                        throw ValidationError(
                            "\(source) has no next_observations, so the last observation of an episode is unknown; Minari stores it")
                    }
                    let last = row == episode.rows.upperBound - 1
                    try writer.append(
                        observation: Array(dataset.observations[(row * S)..<((row + 1) * S)]),
                        action: Array(dataset.actions[(row * A)..<((row + 1) * A)]), reward: dataset.rewards[row],
                        terminal: dataset.terminals[row], timeout: dataset.timeouts[row] || last && episode.ending != .terminated,
                        nextObservation: next)
                }
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }
}
