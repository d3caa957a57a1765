import ArgumentParser
import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowMPI
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
        version: DecisionFlowVersion.current,
        subcommands: [
            TrainCommand.self, EvaluateCommand.self, PlotCommand.self, ImportCommand.self, InspectCommand.self,
            ReplayCommand.self, SliceCommand.self, ExportCommand.self, SweepCommand.self, ReportCommand.self, BenchCommand.self,
            ProbeCommand.self,
        ]
    )

    /// Runs the command, and maps every user-facing error to a message and an exit code in
    /// this one place: bad data, configurations or checkpoints exit 65 (EX_DATAERR), a failed
    /// read or write 74 (EX_IOERR), a diverged training run 70 (EX_SOFTWARE), usage errors 64
    /// (swift-argument-parser's). No error reaches the user as a raw system code or exit 1.
    static func main() {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            try command.run()
        } catch {
            // swift-argument-parser's own errors (help, usage, validation) keep its handling.
            guard let (code, message) = report(for: error) else { exit(withError: error) }
            // Under mpirun one failing process must stop them all: the others would wait for it
            // in their next collective for ever. The message names the rank that failed.
            if MPIProcessGroup.isLaunchedByMPI, let group = try? MPIProcessGroup.launched(), group.size > 1 {
                group.abort("error: rank \(group.rank) of \(group.size): \(message)", code: code)
            }
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            Foundation.exit(code)
        }
    }

    /// The exit code and message of an error a command threw; nil for swift-argument-parser's.
    static func report(for error: any Error) -> (Int32, String)? {
        switch error {
        case let error as TrainingError:
            switch error {
            case .nonFinite, .ranksDiverged: return (70, "\(error)")  // EX_SOFTWARE: the run itself failed
            default: break
            }
            return (65, "\(error)")
        case let error as D4RLError:
            return (error.kind == .writeFailed ? 74 : 65, "\(error)")
        case is HDF5Error, is CheckpointError, is EnvironmentError, is EvaluationError, is PolicyError:
            return (65, "\(error)")  // EX_DATAERR: bad input
        case is CocoaError, is POSIXError:
            return (74, "input or output failed: \(FileProblem.reason(error))")  // EX_IOERR
        default:
            let domain = (error as NSError).domain
            guard domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain else { return nil }
            return (74, "input or output failed: \(FileProblem.reason(error))")
        }
    }
}
