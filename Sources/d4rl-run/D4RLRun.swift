import ArgumentParser
import DecisionFlow
import DecisionFlowTraining
import Foundation
import RLData

/// `d4rl-run`: offline RL on D4RL datasets, from the command line.
@main
struct D4RLRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "d4rl-run",
        abstract: "Offline reinforcement learning on D4RL datasets: train, inspect, slice, bench.",
        subcommands: [TrainCommand.self, PlotCommand.self, InspectCommand.self, ReplayCommand.self, SliceCommand.self, BenchCommand.self]
    )

    /// Runs the command, and maps every user-facing error to a message and an exit code in
    /// this one place: bad data, configurations or checkpoints exit 65 (EX_DATAERR), a
    /// diverged training run 70 (EX_SOFTWARE), everything else as swift-argument-parser
    /// decides (usage errors 64).
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
        } catch let error as CheckpointError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(65)
        } catch let error as TrainingError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            switch error {
            case .nonFinite: Foundation.exit(70)  // EX_SOFTWARE: the run itself failed
            default: Foundation.exit(65)
            }
        } catch {
            exit(withError: error)
        }
    }
}
