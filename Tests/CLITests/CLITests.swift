import DecisionFlow
import Foundation
import Testing
import TestSupport

/// Runs the built `d4rl-run` executable, as a user would.
enum CLI {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let shared = SharedFolder.url

    /// The executable sits beside the test bundle in the build products directory.
    static let executable: URL = {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("d4rl-run")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/d4rl-run")
    }()

    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    /// Runs `d4rl-run` with `arguments`; with a `launcher` (e.g. `mpirun` and its options),
    /// runs the launcher with the executable and `arguments` after its own. `input`, when
    /// given, is the program's standard input.
    static func run(
        _ arguments: [String], environment: [String: String] = [:], launcher: [String] = [], input: String? = nil
    ) throws -> Result {
        let process = Process()
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = launcher.dropFirst() + [executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.currentDirectoryURL = packageRoot
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let stdin = input.map { _ in Pipe() }
        if let stdin { process.standardInput = stdin }
        try process.run()
        if let stdin, let input {
            // On a thread of its own: a child that answers each line fills its output pipe
            // while this one still writes.
            Thread.detachNewThread {
                stdin.fileHandleForWriting.write(Data(input.utf8))
                try? stdin.fileHandleForWriting.close()
            }
        }
        // Drain both pipes at once, before waiting: a child that fills one pipe (64 KiB) while
        // the test reads the other would block for ever.
        let error = PipeDrain(err.fileHandleForReading)
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
            error: String(decoding: error.wait(), as: UTF8.self))
    }

    /// Reads a pipe to its end on a thread of its own.
    final class PipeDrain: @unchecked Sendable {
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                data = handle.readDataToEndOfFile()
                done.signal()
            }
        }

        /// Everything the pipe carried, once the writer closed it.
        func wait() -> Data {
            done.wait()
            return data
        }
    }

    /// Waits until a file named `name` appears in `directory` (created, or renamed into
    /// place as the tool's atomic writes do), or `process` exits, or `timeout` seconds pass.
    /// Returns whether the file is there. Event-driven (inotify), so it never races a slow
    /// machine the way a short polling deadline does; the bound only stops a hung tool.
    static func waitForFile(
        named name: String, in directory: String, while process: Process, timeout: Double = 900
    ) -> Bool {
        let path = directory + "/" + name
        let inotify = inotify_init1(Int32(IN_CLOEXEC))
        guard inotify >= 0 else { return false }
        defer { close(inotify) }
        guard inotify_add_watch(inotify, directory, UInt32(IN_CREATE | IN_MOVED_TO)) >= 0 else { return false }
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Checked after the watch is in place, so an appearance in between is not missed.
        while !FileManager.default.fileExists(atPath: path) {
            guard process.isRunning, Date() < deadline else { return FileManager.default.fileExists(atPath: path) }
            var descriptor = pollfd(fd: inotify, events: Int16(POLLIN), revents: 0)
            // Wake at least once a second to notice that the process exited.
            if poll(&descriptor, 1, 1000) > 0 { _ = read(inotify, &buffer, buffer.count) }
        }
        return true
    }
}

@Suite struct CLIHarnessTests {
    /// A child that writes far more than a pipe holds (64 KiB) to standard error, then to
    /// standard output, finishes: the harness drains both pipes at once.
    @Test func largeOutputOnBothStreamsDoesNotBlock() throws {
        let script = "head -c 300000 /dev/zero | tr '\\0' e >&2; head -c 200000 /dev/zero | tr '\\0' o"
        let result = try CLI.run([], launcher: ["/bin/sh", "-c", script, "sh"])
        #expect(result.status == 0)
        #expect(result.error.utf8.count == 300_000 && result.error.allSatisfy { $0 == "e" })
        #expect(result.output.utf8.count == 200_000 && result.output.allSatisfy { $0 == "o" })
    }
}

@Suite struct InspectCommandTests {
    static let names: [String] = ["hopper", "halfcheetah", "walker2d"].flatMap { env in
        ["random", "medium", "medium-replay", "expert", "medium-expert"].map { "\(env)-\($0)" }
    }

    /// `inspect --json` on all fifteen shared files agrees with each file's own metadata.
    @Test func inspectAgreesWithGeneratorMetadataForEverySharedFile() throws {
        let files = Self.names.map { CLI.shared.appendingPathComponent("datasets/\($0).hdf5").path }
        let result = try CLI.run(["inspect", "--json"] + files)
        #expect(result.status == 0, "\(result.error)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
        #expect(reports.count == 15)
        for report in reports {
            let file = report["file"] as? String ?? "?"
            let metadata = try #require(report["metadata"] as? [String: Any], "\(file)")
            let episodes = try #require(report["episodes"] as? [String: Any], "\(file)")
            let returns = try #require(report["returns"] as? [String: Any], "\(file)")
            let total = try #require(episodes["total"] as? Int, "\(file)")
            #expect(total == (try #require(metadata["episodes"] as? Int, "\(file)")), "\(file)")
            for (ours, theirs) in [("mean", "return_mean"), ("min", "return_min"), ("max", "return_max")] {
                let value = try #require(returns[ours] as? Double, "\(file)")
                let expected = try #require(metadata[theirs] as? Double, "\(file)")
                expectClose(value, expected, atol: 0, rtol: 1e-3, "\(file) return \(ours)")
            }
            #expect(report["normalizedReturns"] != nil, "\(file): environment known from metadata")
        }
    }

    @Test func textReportNamesKeysEpisodesAndScore() throws {
        let result = try CLI.run(["inspect", "data/hopper-medium-replay-tail25k.hdf5"])
        #expect(result.status == 0, "\(result.error)")
        for fragment in [
            "observations", "(25000, 11)", "float32", "gzip(4)", "episodes     95", "environment  hopper", "normalized",
        ] {
            #expect(result.output.contains(fragment), "missing '\(fragment)' in\n\(result.output)")
        }
    }

    @Test func badFilesAreReportedAndTheExitStatusSaysSo() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = directory.appendingPathComponent("notes.hdf5").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: text))
        let good = "data/hopper-medium-replay-tail25k.hdf5"
        let result = try CLI.run(["inspect", good, text, "/nonexistent.hdf5"])
        #expect(result.status == 65)
        #expect(result.output.contains("episodes     95"), "good files are still reported")
        #expect(result.output.contains("\(text): cannot be opened as HDF5"))
        #expect(result.output.contains("/nonexistent.hdf5: cannot be opened as HDF5 (no such file"))
    }

    @Test func unknownEnvironmentIsAUsageError() throws {
        let result = try CLI.run(["inspect", "--env", "pong", "data/hopper-medium-replay-tail25k.hdf5"])
        #expect(result.status == 64)
        #expect(result.error.contains("--env: no environment named 'pong'"), "\(result.error)")
        let close = try CLI.run(["inspect", "--env", "Walkr2d-v5", "data/hopper-medium-replay-tail25k.hdf5"])
        #expect(close.status == 64)
        #expect(close.error.contains("did you mean Walker2d-v5"), "\(close.error)")
        // A version the catalog does not have is not scored as another one.
        let version = try CLI.run(["inspect", "--env", "Hopper-v7", "data/hopper-medium-replay-tail25k.hdf5"])
        #expect(version.status == 64 && version.error.contains("no environment named 'Hopper-v7'"), "\(version.error)")
        // A D4RL task without an environment here is still scored with D4RL's pair.
        let maze = try CLI.run(["inspect", "--env", "maze2d-umaze", "data/hopper-medium-replay-tail25k.hdf5"])
        #expect(maze.status == 0 && maze.output.contains("maze2d-umaze, from --env"), "\(maze.error)")
    }
}

@Suite struct SliceCommandTests {
    @Test func sliceCutsAtEpisodeBoundariesAndKeepsProvenance() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("cut.hdf5").path
        let source = CLI.shared.appendingPathComponent("datasets/walker2d-medium.hdf5").path
        let sliced = try CLI.run(["slice", source, "-o", output, "--max-steps", "3000"])
        #expect(sliced.status == 0, "\(sliced.error)")
        let inspected = try CLI.run(["inspect", "--json", output])
        #expect(inspected.status == 0, "\(inspected.error)")
        let reports = try #require(
            try JSONSerialization.jsonObject(with: Data(inspected.output.utf8)) as? [[String: Any]])
        let report = try #require(reports.first)
        let steps = try #require(report["steps"] as? Int)
        #expect(steps <= 3000 && steps > 1000)
        let episodes = try #require(report["episodes"] as? [String: Any])
        #expect(try #require(episodes["unfinished"] as? Int) == 0, "cut on a boundary")
        let metadata = try #require(report["metadata"] as? [String: Any])
        let total = try #require(episodes["total"] as? Int)
        #expect(total == (try #require(metadata["episodes"] as? Int)))
        #expect((metadata["source"] as? String)?.hasPrefix("walker2d-medium.hdf5, rows 0..<") == true)
        let keys = try #require(report["keys"] as? [[String: Any]]).compactMap { $0["path"] as? String }
        #expect(keys.contains("infos/qpos") && keys.contains("next_observations"))
    }
}

@Suite struct VersionTests {
    /// `--version` prints the library's semantic version, the one `DecisionFlowVersion` holds.
    @Test func versionIsPrinted() throws {
        let result = try CLI.run(["--version"])
        #expect(result.status == 0)
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == DecisionFlowVersion.current)
        #expect(DecisionFlowVersion.current.split(separator: ".").count == 3)
    }
}
