import ArgumentParser
import Foundation
import RLData

extension FileProbe {
    /// The probe `d4rl-run` uses: this very executable, with its hidden `probe-hdf5` command
    /// (`--` first, so a path that starts with a dash is still a path).
    static let tool = FileProbe(
        executable: thisExecutable, arguments: ["probe-hdf5", "--"])

    /// Probes each of `files` with `tool` (see `FileProbe`).
    static func check(_ files: [String]) throws { try tool.check(files) }
}

/// `d4rl-run probe-hdf5 FILE`: the child side of `FileProbe` (hidden).
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe-hdf5", abstract: "Reads an HDF5 file completely (used internally).",
        shouldDisplay: false)

    @Argument var file: String

    func run() {
        FileProbe.readEverything(file)
    }
}
