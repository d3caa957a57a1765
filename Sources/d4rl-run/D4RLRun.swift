import ArgumentParser
import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowTraining
import Foundation
import RLData
import RLEnvironments

/// `d4rl-run`: offline RL on D4RL datasets, from the command line.
@main
struct D4RLRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "d4rl-run",
        abstract:
            "Offline reinforcement learning on D4RL datasets: train, evaluate, embed, and inspect data and simulators.",
        subcommands: [
            TrainCommand.self, EvaluateCommand.self, PlotCommand.self, ImportCommand.self, InspectCommand.self,
            ReplayCommand.self, SliceCommand.self, BenchCommand.self,
        ]
    )

    /// Runs the command, and maps every user-facing error to a message and an exit code in
    /// this one place: bad data, configurations or checkpoints exit 65 (EX_DATAERR), a
    /// diverged training run 70 (EX_SOFTWARE), everything else as swift-argument-parser
    /// decides (usage errors 64).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if let code = exitCode(for: error) {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                Foundation.exit(code)
            }
            exit(withError: error)
        }
    }

    /// The exit code of an error whose message is for the user, or nil for swift-argument-
    /// parser's own (usage) errors.
    static func exitCode(for error: any Error) -> Int32? {
        switch error {
        case let error as TrainingError:
            if case .nonFinite = error { return 70 }  // EX_SOFTWARE: the run itself failed
            return 65
        case is D4RLError, is HDF5Error, is CheckpointError, is EnvironmentError, is EvaluationError, is PolicyError:
            return 65  // EX_DATAERR: bad input
        default:
            return nil
        }
    }
}
