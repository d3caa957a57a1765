import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import DecisionFlowExperiments
import DecisionFlowMPI
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation
import ProcessGroups
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
            ProbeCommand.self, EnvironmentsCommand.self, ActCommand.self, PredictCommand.self,
        ]
    )

    /// Runs the command, and maps every error to a message and an exit status in this one
    /// place (`status(for:)`). No error reaches the user as a raw system code or exit 1.
    static func main() {
        refuseUnknownCommands()
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            try command.run()
            // A report nobody received is a failure: standard output on a full disk must not
            // exit 0. A reader that stopped early (`| head`) is not: that is what it asked for.
            // (fflush(nil) flushes every output stream, stdout's buffer included.)
            errno = 0
            if fflush(nil) != 0, errno != EPIPE {
                let reason = String(cString: strerror(errno))
                standardError(
                    "error: standard output could not be written (\(reason)); the output is incomplete\n")
                Foundation.exit(ExitStatus.io)
            }
        } catch {
            // swift-argument-parser's own errors (help, usage, validation) keep its handling.
            guard let (code, message) = status(for: error) else { exit(withError: error) }
            // Under mpirun one failing process must stop them all: the others would wait for it
            // in their next collective for ever. The message names the rank that failed.
            if MPIProcessGroup.isLaunchedByMPI, let group = try? MPIProcessGroup.launched(), group.size > 1 {
                standardError("error: rank \(group.rank) of \(group.size): \(message)\n")
                group.abort(code: code)
            } else {
                standardError("error: \(message)\n")
            }
            Foundation.exit(code)
        }
    }

    /// A command name that does not exist, at any level: swift-argument-parser would answer
    /// `help nosuch` with the general help and exit 0, as if the question had been answered,
    /// and `bench training --steps 0` by blaming the flag ("Unknown option '--steps'").
    static func refuseUnknownCommands() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let asksForHelp = arguments.first == "help"
        if asksForHelp { arguments.removeFirst() }
        var command: any ParsableCommand.Type = D4RLRun.self
        var path = ["d4rl-run"]
        for name in arguments {
            let subcommands = command.configuration.subcommands
            guard !name.hasPrefix("-"), name != "help" else { return }  // `help help` is swift-argument-parser's
            // A command's own arguments follow it, except in `help`, which takes names only.
            if subcommands.isEmpty {
                guard asksForHelp else { return }
                standardError(
                    "error: `\(path.joined(separator: " "))` has no command '\(name)'; `\(path.joined(separator: " ")) --help` describes it\n")
                Foundation.exit(ExitStatus.usage)
            }
            guard let next = subcommands.first(where: { $0._commandName == name }) else {
                let names = subcommands.filter { $0.configuration.shouldDisplay }.map { $0._commandName }
                let guess = Suggestions.nearest(to: name, among: names).map { " (did you mean '\($0)'?)" } ?? ""
                standardError(
                    "error: `\(path.joined(separator: " "))` has no command '\(name)'\(guess); its commands are \(names.joined(separator: ", ")), and `\(path.joined(separator: " ")) --help` describes them\n"
                )
                Foundation.exit(ExitStatus.usage)
            }
            command = next
            path.append(name)
        }
    }

    /// The exit statuses `d4rl-run` uses (sysexits.h); the README lists them.
    enum ExitStatus {
        /// A flag or argument is wrong.
        static let usage: Int32 = 64
        /// Input is unusable: a data file, configuration, checkpoint or run directory.
        static let data: Int32 = 65
        /// The work itself failed: training diverged, the processes of a job disagree or lost
        /// each other, or an error this table does not know (a bug: please report it).
        static let software: Int32 = 70
        /// Reading or writing failed (missing folder, full or read-only disk).
        static let io: Int32 = 74
    }

    /// The exit status and message of an error a command threw; nil for
    /// swift-argument-parser's own errors and explicit `ExitCode`s, which it handles.
    static func status(for error: any Error) -> (Int32, String)? {
        switch error {
        case let error as TrainingError:
            switch error {
            case .nonFinite, .ranksDiverged: return (ExitStatus.software, "\(error)")  // the run itself failed
            case .badConfiguration, .mismatch, .runDirectory: return (ExitStatus.data, "\(error)")
            }
        case let error as D4RLError:
            return (error.kind == .writeFailed ? ExitStatus.io : ExitStatus.data, "\(error)")
        case is HDF5Error, is CheckpointError, is SafetensorsError, is EnvironmentError, is EvaluationError,
            is PolicyError, is TensorBoardEvents.FormatError, is ProtobufReader.FormatError:
            return (ExitStatus.data, "\(error)")  // bad input
        case is EncodingError:
            return (ExitStatus.data, "a value cannot be written as JSON (\(error)); a number is not finite")
        case is RefusedOverwrite:
            return (ExitStatus.usage, "\(error)")  // the user chooses: another path, or --force
        case is FileWriteError:
            return (ExitStatus.io, "\(error)")  // the previous file is intact; the disk or folder is the problem
        case is MPIProcessGroup.MPIError:
            return (ExitStatus.software, "\(error)")  // the job's processes lost each other
        case is ExitCode, is CleanExit, is ValidationError:
            return nil
        case is CocoaError, is POSIXError:
            return (ExitStatus.io, "input or output failed: \(FileProblem.reason(error))")
        default:
            let domain = (error as NSError).domain
            if domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain {
                return (ExitStatus.io, "input or output failed: \(FileProblem.reason(error))")
            }
            // swift-argument-parser's internal parsing errors exit with its usage status.
            if exitCode(for: error) != .failure { return nil }
            return (ExitStatus.software, "internal error (please report it, with the command that caused it): \(error)")
        }
    }
}
