import ArgumentParser
import Foundation
import RLData

/// `d4rl-run`: offline RL on D4RL datasets, from the command line.
@main
struct D4RLRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "d4rl-run",
        abstract: "Offline reinforcement learning on D4RL datasets: inspect, slice, train, evaluate.",
        subcommands: [InspectCommand.self, SliceCommand.self, BenchCommand.self]
    )

    /// Runs the command, and maps every user-facing error to a message and an exit code in
    /// this one place: data problems exit 65 (EX_DATAERR), everything else as
    /// swift-argument-parser decides (usage errors 64).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as D4RLError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(65)
        } catch let error as HDF5Error {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(65)
        } catch {
            exit(withError: error)
        }
    }
}
