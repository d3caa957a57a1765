import Foundation
import Testing

import DecisionFlowSupport
@testable import DecisionFlow
@testable import DecisionFlowCheckpoints
@testable import DecisionFlowEvaluation
@testable import DecisionFlowExperiments
@testable import DecisionFlowMPI
@testable import DecisionFlowTraining
@testable import RLData
@testable import RLEnvironments
@testable import d4rl_run

/// Every error type that can reach `d4rl-run` exits with the status the README documents
/// (64 usage, 65 bad input, 70 the work failed, 74 reading or writing failed), never 1.
@Suite struct ExitStatusTests {
    /// One value of every error type the libraries define, and its documented status.
    static let cases: [(error: any Error, status: Int32)] = [
        (TrainingError.badConfiguration(file: "c.json", problem: "p"), 65),
        (TrainingError.mismatch("m"), 65),
        (TrainingError.runDirectory(path: "r", problem: "p"), 65),
        (TrainingError.nonFinite(step: 3, what: "loss", lastCheckpoint: nil), 70),
        (TrainingError.ranksDiverged(step: 3, rank: 1, checksums: ["a", "b"]), 70),
        (D4RLError(.missingKey, file: "f", key: "k", problem: "p", remedy: "r"), 65),
        (D4RLError(.writeFailed, file: "f", problem: "p", remedy: "r"), 74),
        (HDF5Error(operation: "open", file: "f", objectPath: nil, stack: []), 65),
        (CheckpointError(file: "f", problem: "p"), 65),
        (FileWriteError(file: "f", problem: "p"), 74),
        (RefusedOverwrite(file: "f", problem: "p"), 64),
        (EncodingError.invalidValue(Double.nan, .init(codingPath: [], debugDescription: "NaN")), 65),
        (SafetensorsError(file: "f", tensor: nil, problem: "p"), 65),
        (EnvironmentError.needsReset(environment: "hopper"), 65),
        (EvaluationError.encoding("p"), 65),
        (PolicyError.notReset, 65),
        (TensorBoardEvents.FormatError(description: "d"), 65),
        (MPIProcessGroup.MPIError(call: "MPI_Allreduce", rank: 1, message: "m"), 70),
        (CocoaError(.fileWriteOutOfSpace), 74),
        (POSIXError(.EACCES), 74),
    ]

    @Test func everyErrorTypeHasItsDocumentedStatus() {
        for (error, status) in Self.cases {
            let mapped = D4RLRun.status(for: error)
            #expect(mapped?.0 == status, "\(type(of: error)) \(error): \(String(describing: mapped))")
            #expect(mapped?.1.isEmpty == false)
        }
    }

    /// An error no table knows (a bug) exits 70 with a message asking for a report, not 1.
    @Test func anUnknownErrorExitsWithTheSoftwareStatus() throws {
        struct Unforeseen: Error {}
        let (status, message) = try #require(D4RLRun.status(for: Unforeseen()))
        #expect(status == 70 && message.contains("internal error"))
    }

    /// The list above is complete: every error type declared in Sources/ is in it, so a new
    /// one cannot reach the tool unmapped without this test failing.
    @Test func everyErrorTypeInTheSourcesIsListed() throws {
        let sources = CLI.packageRoot.appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") && !$0.hasPrefix("d4rl-run/") }
        let declaration = try Regex(#"public (?:struct|enum|final class|class) (\w+)\s*:[^{]*\bError\b"#)
        var declared: Set<String> = []
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for match in text.matches(of: declaration) {
                if let name = match.output[1].substring { declared.insert(String(name)) }
            }
        }
        let listed = Set(Self.cases.map { String(describing: type(of: $0.error)) })
        #expect(declared.count >= 10, "found \(declared.sorted())")
        #expect(declared.subtracting(listed).isEmpty, "error types with no exit status listed here: \(declared.subtracting(listed).sorted())")
    }

    /// The statuses through the binary, for the kinds of failure a user meets.
    @Test func commandsExitWithTheDocumentedStatuses() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-exit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // 70: a learning rate so large that the loss overflows.
        let diverged = try CLI.run(
            ["train"] + TrainCommandTests.tiny + [
                "--learning-rate", "1e38", "--steps", "50", "--out", directory.appendingPathComponent("d").path,
            ])
        #expect(diverged.status == 70 && diverged.error.contains("NaN or infinite"), "\(diverged.status) \(diverged.error)")
        // 65: a file that is no checkpoint; a state dict that is no safetensors file.
        let notes = directory.appendingPathComponent("notes.txt").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notes))
        let checkpoint = try CLI.run(["evaluate", "--checkpoint", notes, "--episodes", "1"])
        #expect(checkpoint.status == 65, "\(checkpoint.error)")
        let stateDict = try CLI.run(
            ["import", "--state-dict", notes, "--description", notes, "-o", directory.appendingPathComponent("x").path])
        #expect(stateDict.status == 65, "\(stateDict.error)")
        // 74: a write into a folder that does not exist.
        let unwritable = try CLI.run([
            "slice", "data/hopper-medium-replay-tail25k.hdf5", "-o", directory.appendingPathComponent("no/such/cut.hdf5").path,
            "--max-steps", "3000",
        ])
        #expect(unwritable.status == 74, "\(unwritable.status) \(unwritable.error)")
        // 64: a misspelt flag.
        let usage = try CLI.run(["train", "--learning-rat", "1"])
        #expect(usage.status == 64, "\(usage.error)")
        for result in [diverged, checkpoint, stateDict, unwritable, usage] { #expect(result.status != 1) }
    }

    /// Writes that fail exit 74 whichever command makes them, naming the file; a report that
    /// could not reach standard output (a full disk) is a failure too, and a reader that
    /// stops early (`| head`) is not.
    @Test func failedWritesAndLostOutputExitWithTheIOStatus() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run").path
        let trained = try CLI.run(["train"] + TrainCommandTests.tiny + ["--steps", "4", "--out", run])
        try #require(trained.status == 0, "\(trained.error)")
        let missing = directory.appendingPathComponent("no/such/plot.svg").path
        let plot = try CLI.run(["plot", run, "-o", missing])
        #expect(plot.status == 74 && plot.error.contains(missing), "\(plot.status) \(plot.error)")
        // A one-letter file name, relative to the working directory (Foundation's path
        // arithmetic traps on it): written, not crashed on.
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["plot", run, "-o", "c"]
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("c").path))
        let intoFolder = try CLI.run(["plot", run, "-o", directory.path])
        #expect(intoFolder.status == 74 && intoFolder.error.contains("is a directory"), "\(intoFolder.error)")

        func exitStatus(_ arguments: [String], standardOutput: FileHandle) throws -> (Int32, Process.TerminationReason) {
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = arguments
            process.currentDirectoryURL = CLI.packageRoot
            process.standardOutput = standardOutput
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return (process.terminationStatus, process.terminationReason)
        }
        let inspect = ["inspect", "data/hopper-medium-replay-tail25k.hdf5"]
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let onFullDisk = try exitStatus(inspect, standardOutput: full)
        #expect(onFullDisk.0 == 74 && onFullDisk.1 == .exit)
        // A reader that is gone: the tool ends quietly, as a Unix filter does (SIGPIPE, or
        // status 0 where SIGPIPE is ignored), never with the I/O status.
        let pipe = Pipe()
        try pipe.fileHandleForReading.close()
        let (status, reason) = try exitStatus(inspect, standardOutput: pipe.fileHandleForWriting)
        #expect((reason == .uncaughtSignal && status == SIGPIPE) || (reason == .exit && status == 0), "\(reason) \(status)")
    }

    /// A recording that runs out of room (here a file-size limit of 10 KB, which fails writes as
    /// a full disk does): exit 74 with the reason, nothing left behind, and no crash afterwards
    /// (libhdf5's exit handler used to crash on the file whose close had failed).
    @Test func aRecordingThatRunsOutOfRoomFailsCleanly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-room-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let limited = ["/bin/sh", "-c", #"trap "" XFSZ; ulimit -f 20; exec "$0" "$@""#]
        for (output, minari) in [("cut.hdf5", false), ("cut-v0", true)] {
            let path = directory.appendingPathComponent(output).path
            let arguments =
                ["slice", "data/hopper-medium-replay-tail25k.hdf5", "-o", path, "--max-steps", "2000"]
                + (minari ? ["--minari-id", "cut-v0"] : [])
            let result = try CLI.run(arguments, launcher: limited)
            #expect(result.status == 74, "\(output): \(result.status) \(result.error)")
            #expect(result.error.contains("File too large") && !result.error.contains("crashed"), "\(result.error)")
            let left = try FileManager.default.subpathsOfDirectory(atPath: directory.path).filter { $0.contains("partial") || $0.hasSuffix(".hdf5") }
            #expect(left.isEmpty, "\(output) left \(left)")
        }
    }
}
