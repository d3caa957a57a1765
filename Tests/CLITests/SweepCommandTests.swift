import Foundation
import Testing

/// `sweep plan|run|status` and `report` through the binary, sequentially and under mpirun.
@Suite(.serialized) struct SweepCommandTests {
    /// 2 datasets × 2 attentions × 2 seeds × 30 steps of a tiny model.
    static let specification = """
        {
          "name": "tiny",
          "base": {"embeddingDimension": 16, "layerCount": 1, "headCount": 2, "batchSize": 8, "contextLength": 5,
                   "warmupSteps": 2, "steps": 30, "logEvery": 10, "checkpointEvery": 10, "threads": 1,
                   "environment": "hopper"},
          "grid": {"datasets": ["data/hopper-medium-replay-tail25k.hdf5", "DATA2"],
                   "attention": ["flow", "softmax"], "seed": [1, 2]},
          "episodes": 2
        }
        """

    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    func writeSpecification(in directory: URL, _ text: String = specification) throws -> String {
        let path = directory.appendingPathComponent("spec.json").path
        let second = CLI.shared.appendingPathComponent("datasets/hopper-medium.hdf5").path
        try text.replacingOccurrences(of: "DATA2", with: second).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The specification's sweep with `steps` training steps per run, planned into
    /// `directory/sweep`; returns the sweep's path.
    func plannedSweep(in directory: URL, steps: Int) throws -> String {
        let spec = try writeSpecification(
            in: directory, Self.specification.replacingOccurrences(of: "\"steps\": 30", with: "\"steps\": \(steps)"))
        let sweep = directory.appendingPathComponent("sweep").path
        let planned = try CLI.run(["sweep", "plan", spec, "-o", sweep])
        try #require(planned.status == 0, "\(planned.error)")
        return sweep
    }

    func runNames(_ sweep: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: sweep + "/runs").sorted()
    }

    @Test func aSweepCompletesAloneAndUnderMPIWithIdenticalCheckpoints() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let spec = try writeSpecification(in: directory)
        let alone = directory.appendingPathComponent("alone").path
        let parallel = directory.appendingPathComponent("parallel").path
        for sweep in [alone, parallel] {
            let planned = try CLI.run(["sweep", "plan", spec, "-o", sweep])
            #expect(planned.status == 0, "\(planned.error)")
            #expect(planned.output.contains("planned 8 runs"))
        }
        let sequential = try CLI.run(["sweep", "run", alone])
        #expect(sequential.status == 0, "\(sequential.error)")
        let split = try MPITrainingTests.mpirun(2, ["sweep", "run", parallel])
        #expect(split.status == 0, "\(split.error)")
        #expect(split.output.contains("rank 0: ") && split.output.contains("rank 1: "))
        let names = try runNames(alone)
        let parallelNames = try runNames(parallel)
        #expect(names.count == 8 && names == parallelNames)
        for name in names {
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(alone)/runs/\(name)/checkpoint.safetensors"))
            let b = try Data(contentsOf: URL(fileURLWithPath: "\(parallel)/runs/\(name)/checkpoint.safetensors"))
            #expect(a == b, "\(name): the checkpoints differ")
            #expect(FileManager.default.fileExists(atPath: "\(alone)/runs/\(name)/evaluation.json"))
        }
        // A run stopped during its final evaluation (checkpoint at the last step, no
        // evaluation.json) is evaluated again, not trained.
        let evaluationPath = "\(alone)/runs/\(names[0])/evaluation.json"
        let evaluated = try Data(contentsOf: URL(fileURLWithPath: evaluationPath))
        try FileManager.default.removeItem(atPath: evaluationPath)
        let again = try CLI.run(["sweep", "run", alone, "--index", "0"])
        #expect(again.status == 0, "\(again.error)")
        #expect(again.output.contains("trained to step 30, evaluating"), "\(again.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: evaluationPath)) == evaluated)
        let status = try CLI.run(["sweep", "status", parallel])
        #expect(status.status == 0 && status.output.contains("8 done, 0 running, 0 stopped, 0 stale, 0 pending"), "\(status.output)")
        // The table: 2 datasets × 2 attentions, each cell over 2 seeds.
        let report = try CLI.run(["report", alone, "--csv", directory.appendingPathComponent("t.csv").path])
        #expect(report.status == 0, "\(report.error)")
        #expect(report.output.contains("| hopper-medium-replay-tail25k |") && report.output.contains("attention=softmax"))
        #expect(report.output.contains("| average |") && report.output.contains("seeds 1, 2, 30 steps"), "\(report.output)")
        let csv = try String(contentsOfFile: directory.appendingPathComponent("t.csv").path, encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 1 + 2 * 2 * 2)
        // Reached twice, or as a sweep and one of its runs, it is the same table.
        let table = report.output.components(separatedBy: "\n").filter { $0.hasPrefix("|") }
        for again in [[alone, alone], [alone, "\(alone)/runs/\(names[0])"]] {
            let twice = try CLI.run(["report"] + again)
            #expect(twice.status == 0, "\(twice.error)")
            #expect(twice.output.components(separatedBy: "\n").filter { $0.hasPrefix("|") } == table, "\(twice.output)")
        }

        // Another run's evaluation dropped into a run is stale: not done, and evaluated again.
        let foreign = "\(alone)/runs/\(names[1])/evaluation.json"
        let own = try Data(contentsOf: URL(fileURLWithPath: foreign))
        try FileManager.default.removeItem(atPath: foreign)
        try FileManager.default.copyItem(atPath: evaluationPath, toPath: foreign)
        let stale = try CLI.run(["sweep", "status", alone])
        #expect(stale.output.contains("7 done, 0 running, 0 stopped, 1 stale") && stale.output.contains("evaluated checkpoint"), "\(stale.output)")
        let reevaluated = try CLI.run(["sweep", "run", alone])
        #expect(reevaluated.status == 0 && reevaluated.output.contains("not done: "), "\(reevaluated.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: foreign)) == own)
    }

    @Test func aKilledSweepCompletesOnlyWhatIsMissing() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let sweep = try plannedSweep(in: directory, steps: 600)
        // Finish run 0 alone, then kill a whole-sweep process once run 1 has a checkpoint.
        let first = try CLI.run(["sweep", "run", sweep, "--index", "0"])
        #expect(first.status == 0, "\(first.error)")
        let names = try runNames(sweep)
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["sweep", "run", sweep]
        process.currentDirectoryURL = CLI.packageRoot
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let appeared = CLI.waitForFile(named: "checkpoint.safetensors", in: "\(sweep)/runs/\(names[1])", while: process)
        // Killed at once: run 1 has 590 steps to go, and the sweep six runs after it.
        let killed = process.isRunning
        if killed { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try #require(appeared, "run 1 wrote no checkpoint before the sweep ended (status \(process.terminationStatus))")
        try #require(killed, "the sweep finished before it could be killed")
        let evaluations = names.map { FileManager.default.fileExists(atPath: "\(sweep)/runs/\($0)/evaluation.json") }
        try #require(evaluations == [true] + [Bool](repeating: false, count: 7), "run 1 finished before the kill")
        let status = try CLI.run(["sweep", "status", sweep])
        #expect(status.output.contains("1 done, 0 running, 1 stopped, 0 stale, 6 pending"), "\(status.output)")
        let evaluated = try Data(contentsOf: URL(fileURLWithPath: "\(sweep)/runs/\(names[0])/evaluation.json"))

        let rerun = try CLI.run(["sweep", "run", sweep])
        #expect(rerun.status == 0, "\(rerun.error)")
        #expect(rerun.output.contains("[1/8] \(names[0]): done, skipped"))
        #expect(rerun.output.contains("[2/8] \(names[1]): resuming at step"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(sweep)/runs/\(names[0])/evaluation.json")) == evaluated)
        let after = try CLI.run(["sweep", "status", sweep])
        #expect(after.output.contains("8 done"), "\(after.output)")
    }

    /// Under mpirun a run that fails on one rank is recorded there and the ranks go on: every
    /// other run finishes, and the exit status and a summary on rank 0 name the failure and
    /// its rank. `--index` picks a run for one process, so under mpirun it is refused.
    @Test func underMPIAFailingRunDoesNotStopTheOthers() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let sweep = try plannedSweep(in: directory, steps: 6)
        let names = try runNames(sweep)
        let plan = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: sweep + "/sweep.json"))) as? [String: Any]
        let order = try #require((plan?["runs"] as? [[String: Any]])?.compactMap { $0["name"] as? String })
        // Run 1 (rank 1's first) names data that does not exist.
        let broken = "\(sweep)/runs/\(order[1])/config.json"
        let text = try String(contentsOfFile: broken, encoding: .utf8)
        try text.replacingOccurrences(of: "hopper-medium-replay-tail25k.hdf5", with: "no-such-file.hdf5")
            .write(toFile: broken, atomically: true, encoding: .utf8)
        #expect(text.contains("hopper-medium-replay-tail25k.hdf5"))

        let refused = try MPITrainingTests.mpirun(2, ["sweep", "run", sweep, "--index", "0"])
        #expect(refused.status == 64 && refused.error.contains("--index picks one run"), "\(refused.status) \(refused.error)")

        let result = try MPITrainingTests.mpirun(2, ["sweep", "run", sweep])
        #expect(result.status == 65, "\(result.status) \(result.error)")
        #expect(result.error.contains("1 run(s) failed: \(order[1]) (rank 1)"), "\(result.error)")
        for name in names {
            let evaluated = FileManager.default.fileExists(atPath: "\(sweep)/runs/\(name)/evaluation.json")
            #expect(evaluated == (name != order[1]), "\(name)")
        }
    }

    @Test func badSpecificationsAndDirectoriesAreClearErrors() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let unknown = try writeSpecification(in: directory, #"{"grid": {"atention": ["flow"]}}"#)
        let first = try CLI.run(["sweep", "plan", unknown, "-o", directory.appendingPathComponent("a").path])
        #expect(first.status == 65 && first.error.contains("'atention'") && first.error.contains("did you mean 'attention'"), "\(first.error)")
        let empty = try writeSpecification(in: directory, #"{"base": {"steps": 5}, "grid": {"seed": []}}"#)
        let second = try CLI.run(["sweep", "plan", empty, "-o", directory.appendingPathComponent("b").path])
        #expect(second.status == 65 && second.error.contains("'seed' has no values"), "\(second.error)")
        let nothing = try writeSpecification(in: directory, #"{"base": {"steps": 5}}"#)
        let third = try CLI.run(["sweep", "plan", nothing, "-o", directory.appendingPathComponent("c").path])
        #expect(third.status == 65 && third.error.contains("the grid is empty"), "\(third.error)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("c").path), "nothing planned")
        let notASweep = try CLI.run(["sweep", "run", directory.path])
        #expect(notASweep.status == 65 && notASweep.error.contains("is not a sweep"), "\(notASweep.error)")
        let status = try CLI.run(["sweep", "status", directory.path])
        #expect(status.status == 65 && status.error.contains("is not a sweep"))
        let report = try CLI.run(["report", directory.path])
        #expect(report.status == 65 && report.error.contains("neither a sweep"), "\(report.error)")
    }
}
