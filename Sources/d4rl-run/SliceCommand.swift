import ArgumentParser
import Foundation
import RLData
import RLEnvironments

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

    @Option(parsing: .unconditional, help: "The most steps to copy (default: every episode).")
    var maxSteps: Int?

    @Option(help: "Write a Minari dataset with this id (e.g. mysim/hopper/medium-v0) instead of a D4RL file.")
    var minariId: String?

    @Flag(help: "Take the last episodes instead of the first.")
    var fromEnd = false

    func validate() throws {
        try requirePath("output", output)
        if let maxSteps { try requireFlag("max-steps", maxSteps, in: 1...Int.max) }
        if let minariId, !DatasetSource.isMinariID(minariId) {
            throw ValidationError(
                "--minari-id '\(minariId)' must be a relative id such as mysim/hopper/medium-v0 (no empty, '.' or '..' parts, no control characters)")
        }
    }

    func run() throws {
        // Before anything is read: the output must not be, or lie inside, the source.
        try DatasetSlice.requireApart(output: output, from: source)
        try FileProbe.check([source])
        let dataset = try D4RLDataset(file: source, options: D4RLLoadOptions(loadNextObservations: true))
        let slice = DatasetSlice(of: dataset, source: source, maxSteps: maxSteps ?? .max, fromEnd: fromEnd)
        guard !slice.episodes.isEmpty else {
            throw ValidationError("--max-steps \(maxSteps ?? 0) is shorter than the first episode")
        }
        let name = URL(fileURLWithPath: source).lastPathComponent
        if let minariId {
            // When the source records no env_id, the gymnasium id of the environment it names.
            let environmentID = dataset.environmentID.flatMap { EnvironmentCatalog.standard.lookUp($0)?.id }
            try slice.writeMinari(to: output, id: minariId, environmentID: environmentID)
            print("wrote \(output): Minari dataset \(minariId), \(slice.steps) steps, \(slice.episodes.count) episodes of \(name)")
            return
        }
        try slice.writeD4RL(to: output)
        print(
            "wrote \(output): \(slice.steps) steps, \(slice.episodes.count) episodes (rows \(slice.rows.lowerBound)..<\(slice.rows.upperBound) of \(name))"
        )
    }
}
