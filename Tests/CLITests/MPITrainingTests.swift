import DecisionFlow
import DecisionFlowCheckpoints
import Foundation
import TestSupport
import Testing

/// Data-parallel training under a real `mpirun` (Open MPI), as a user runs it.
@Suite(.serialized) struct MPITrainingTests {
    /// `mpirun` with what CI needs: root is allowed, and two ranks may share fewer cores.
    static func mpirun(_ processes: Int, _ arguments: [String]) throws -> CLI.Result {
        try CLI.run(arguments, launcher: Self.launcher(processes))
    }

    /// `mpirun` and its options for `processes` ranks.
    static func launcher(_ processes: Int) -> [String] {
        ["/usr/bin/mpirun", "--allow-run-as-root", "--oversubscribe", "-np", String(processes)]
    }

    static let tiny = tiny(batch: 8, checkpointEvery: 10)

    /// A tiny model on the bundled data, one thread per rank.
    static func tiny(batch: Int, checkpointEvery: Int) -> [String] {
        [
            "--dataset", "data/hopper-medium-replay-tail25k.hdf5", "--embedding-dimension", "16", "--layer-count", "1",
            "--head-count", "2", "--batch-size", String(batch), "--context-length", "5", "--warmup-steps", "2",
            "--log-every", "1", "--checkpoint-every", String(checkpointEvery), "--threads", "1",
        ]
    }

    static func losses(_ directory: String) -> [Double] {
        let text = (try? String(contentsOfFile: directory + "/log.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double
        }
    }

    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-mpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func twoRanksTrainAsOneProcessWithTheSameGlobalBatch() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let one = directory.appendingPathComponent("one").path
        let two = directory.appendingPathComponent("two").path
        let single = try CLI.run(["train"] + Self.tiny + ["--dropout", "0", "--steps", "20", "--out", one])
        #expect(single.status == 0, "\(single.error)")
        let parallel = try Self.mpirun(2, ["train"] + Self.tiny + ["--dropout", "0", "--steps", "20", "--out", two])
        #expect(parallel.status == 0, "\(parallel.error)")
        #expect(parallel.error.contains("data parallel: 2 processes, each computing 4 of every 8 windows"))
        let reference = Self.losses(one)
        let distributed = Self.losses(two)
        #expect(reference.count == 20 && distributed.count == 20)
        expectClose(distributed, reference, atol: 0, rtol: 1e-5, "losses of 2 ranks against 1 process")
        // Each rank hashed its own parameters at the end; rank 0 printed them all.
        let line = try #require(parallel.output.split(separator: "\n").first { $0.contains("parameter checksums by rank") })
        let checksums = line.split(separator: ":").last!.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(checksums.count == 2 && checksums[0] == checksums[1], "\(line)")
        // One set of files, written by rank 0.
        let files = try FileManager.default.contentsOfDirectory(atPath: two).sorted()
        #expect(files.filter { !$0.hasPrefix(".") } == ["checkpoint.safetensors", "config.json", "events.out.tfevents.decisionflow", "log.jsonl"])
    }

    @Test func resumeUnderMPIRepeatsAStraightRun() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let straight = directory.appendingPathComponent("straight").path
        let split = directory.appendingPathComponent("split").path
        // Dropout on: each rank's stream is saved in the checkpoint and continued.
        let whole = try Self.mpirun(2, ["train"] + Self.tiny + ["--steps", "20", "--out", straight])
        #expect(whole.status == 0, "\(whole.error)")
        let first = try Self.mpirun(2, ["train"] + Self.tiny + ["--steps", "10", "--out", split])
        #expect(first.status == 0, "\(first.error)")
        let second = try Self.mpirun(2, ["train", "--resume", split, "--steps", "20"])
        #expect(second.status == 0, "\(second.error)")
        let a = Self.losses(straight)
        let b = Self.losses(split)
        #expect(a.count == 20 && b.count == 20)
        #expect(a == b, "losses differ after resuming under MPI")
    }

    @Test func aKilledRankStopsTheJobAndTheCheckpointSurvives() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run").path
        // The run directory exists beforehand, so its checkpoint's appearance can be watched.
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let process = Process()
        let launcher = Self.launcher(2)
        process.executableURL = URL(fileURLWithPath: launcher[0])
        process.arguments =
            launcher.dropFirst() + [CLI.executable.path, "train"] + Self.tiny(batch: 8, checkpointEvery: 5)
            + ["--steps", "1000000", "--out", run]
        process.currentDirectoryURL = CLI.packageRoot
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        // Whatever happens below, mpirun and its million-step job do not outlive the test.
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
        let error = CLI.PipeDrain(err.fileHandleForReading)
        // Wait for a first checkpoint, then kill one rank (a child of mpirun) outright.
        guard CLI.waitForFile(named: "checkpoint.safetensors", in: run, while: process) else {
            process.terminate()
            process.waitUntilExit()
            Issue.record("no checkpoint appeared: \(String(decoding: error.wait(), as: UTF8.self))")
            return
        }
        // The ranks, recorded while mpirun is alive: once it exits, a surviving rank would be
        // re-parented and no longer show as its child.
        let ranks = try CLI.childProcesses(of: process.processIdentifier)
        try #require(ranks.count == 2, "mpirun's children: \(ranks)")
        let identities = ranks.compactMap(CLI.ProcessIdentity.init(pid:))
        #expect(identities.count == ranks.count)
        if let victim = ranks.last { kill(victim, SIGKILL) }
        process.waitUntilExit()
        let message = String(decoding: error.wait(), as: UTF8.self)
        #expect(process.terminationStatus != 0)
        #expect(message.contains("rank") && message.contains("signal 9"), "\(message)")
        // No rank is left running, and the last checkpoint is whole.
        // mpirun reaps its children before it exits; a short grace only absorbs a rank still
        // being torn down by the kernel.
        let grace = Date().addingTimeInterval(10)
        while identities.contains(where: \.isAlive) && Date() < grace { usleep(20_000) }
        let survivors = identities.filter(\.isAlive)
        #expect(survivors.isEmpty, "ranks still running after mpirun exited: \(survivors.map(\.pid))")
        let checkpoint = try Checkpoint.read(run + "/checkpoint.safetensors")
        #expect(checkpoint.configuration.embeddingDimension == 16)
    }

    @Test func episodesAreSplitAcrossRanksAndGathered() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run").path
        // Periodic evaluation during training: 3 episodes over 2 ranks (2 + 1), logged by rank 0.
        let trained = try Self.mpirun(
            2, ["train"] + Self.tiny + ["--steps", "4", "--evaluate-every", "4", "--evaluation-episodes", "3", "--out", run])
        #expect(trained.status == 0, "\(trained.error)")
        #expect(try String(contentsOfFile: run + "/log.jsonl", encoding: .utf8).contains("\"normalized_score\""))
        // evaluate: the same episodes as one process (to rounding: batches of other heights).
        func episodes(_ result: CLI.Result) throws -> [[String: Any]] {
            let reports = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
            return try #require(reports.first?["episodes"] as? [[String: Any]])
        }
        let arguments = ["evaluate", "--checkpoint", run + "/checkpoint.safetensors", "--episodes", "5", "--targets", "3600", "--json"]
        let single = try CLI.run(arguments)
        let split = try Self.mpirun(2, arguments)
        #expect(single.status == 0 && split.status == 0, "\(split.error)")
        let a = try episodes(single)
        let b = try episodes(split)
        #expect(a.count == 5 && b.count == 5, "rank 0 prints every episode once")
        #expect(try a.map { try #require($0["length"] as? Int) } == b.map { try #require($0["length"] as? Int) })
        let returns = try a.map { try #require($0["episodeReturn"] as? Double) }
        let splitReturns = try b.map { try #require($0["episodeReturn"] as? Double) }
        expectClose(splitReturns, returns, atol: 0, rtol: 1e-6, "episode returns over 2 ranks against 1 process")
    }

    @Test func aFailingRankStopsEveryRankNamingItself() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        // More processes than windows: every rank refuses, and the job stops with the message.
        let result = try Self.mpirun(
            2, ["train"] + Self.tiny(batch: 1, checkpointEvery: 10) + ["--steps", "5", "--out", directory.appendingPathComponent("r").path])
        #expect(result.status != 0)
        #expect(result.error.contains("error: rank") && result.error.contains("fewer windows than the 2 processes"), "\(result.error)")
    }
}

extension CLI {
    /// A process as /proc knows it: its pid and its start time (in clock ticks after boot),
    /// which together name one process even if the pid is later reused.
    struct ProcessIdentity {
        var pid: Int32
        var startTime: UInt64

        init?(pid: Int32) {
            guard let fields = Self.statFields(pid), fields.count > 19, let start = UInt64(fields[19]) else { return nil }
            self.pid = pid
            self.startTime = start
        }

        /// Whether the same process still runs: its /proc entry exists with the same start
        /// time and it is not a zombie (exited, not yet reaped).
        var isAlive: Bool {
            guard let fields = Self.statFields(pid), fields.count > 19 else { return false }
            return UInt64(fields[19]) == startTime && fields[0] != "Z"
        }

        /// The fields of /proc/PID/stat after the command name: state is field 0, the parent
        /// pid field 1, the start time field 19.
        static func statFields(_ pid: Int32) -> [Substring]? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            return stat[stat.index(after: close)...].split(separator: " ")
        }
    }

    /// The pids of the processes whose parent is `parent` (from /proc).
    static func childProcesses(of parent: Int32) throws -> [Int32] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }.filter { pid in
            guard let fields = ProcessIdentity.statFields(pid) else { return false }
            return fields.count > 1 && Int32(fields[1]) == parent
        }.sorted()
    }
}
