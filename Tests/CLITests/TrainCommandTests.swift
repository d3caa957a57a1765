import DecisionFlowTraining
import Foundation
import Testing

/// `d4rl-run train`, `--resume` and `plot`, run as a user would.
@Suite struct TrainCommandTests {
    static let tiny = [
        "--dataset", "data/hopper-medium-replay-tail25k.hdf5", "--embedding-dimension", "16", "--layer-count", "1",
        "--head-count", "2", "--batch-size", "4", "--context-length", "5", "--warmup-steps", "2", "--log-every", "2",
        "--checkpoint-every", "3",
    ]

    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func trainResumeAndPlot() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run").path
        let first = try CLI.run(["train"] + Self.tiny + ["--steps", "6", "--out", run])
        #expect(first.status == 0, "\(first.error)")
        #expect(first.output.contains("trained \(run) to step 6"))
        #expect(first.error.contains("seed 1"), "the seed is printed")
        #expect(first.error.contains("step 6/6"), "progress is shown")
        let log = try String(contentsOfFile: run + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 3)
        #expect(
            log.allSatisfy {
                $0.contains("\"loss\"") && $0.contains("\"learning_rate\"") && $0.contains("\"grad_norm\"")
                    && $0.contains("\"elapsed_seconds\"")
            })

        let again = try CLI.run(["train"] + Self.tiny + ["--steps", "6", "--out", run])
        #expect(again.status == 65)
        #expect(again.error.contains("--resume"), "starting over a run is refused with a way out")

        let resumed = try CLI.run(["train", "--resume", run, "--steps", "10"])
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.error.contains("resuming \(run) at step 6 of 10"))
        #expect(resumed.output.contains("to step 10"))

        let svg = directory.appendingPathComponent("curves.svg").path
        let plot = try CLI.run(["plot", run, "--output", svg])
        #expect(plot.status == 0, "\(plot.error)")
        let image = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(image.hasPrefix("<svg") && image.contains("<polyline") && image.contains("run"))
    }

    @Test func badConfigurationFailsBeforeTraining() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("bad.json").path
        try Data(#"{"datasets": ["data/hopper-medium-replay-tail25k.hdf5"], "batchSise": 8}"#.utf8).write(
            to: URL(fileURLWithPath: config))
        let out = directory.appendingPathComponent("run").path
        let unknown = try CLI.run(["train", "--config", config, "--out", out])
        #expect(unknown.status == 65)
        #expect(
            unknown.error.contains("\(config): has an unknown field 'batchSise' (did you mean 'batchSize'?)"),
            "\(unknown.error)")
        #expect(!FileManager.default.fileExists(atPath: out), "nothing was started")

        try Data(#"{"datasets": ["data/hopper-medium-replay-tail25k.hdf5"], "steps": "many"}"#.utf8).write(
            to: URL(fileURLWithPath: config))
        let wrongType = try CLI.run(["train", "--config", config, "--out", out])
        #expect(wrongType.status == 65)
        #expect(wrongType.error.contains("field 'steps' should be a whole number"), "\(wrongType.error)")

        let mismatch = try CLI.run([
            "train", "--config", "configs/cpu/walker2d-medium.json", "--dataset",
            "data/hopper-medium-replay-tail25k.hdf5", "--out", out,
        ])
        #expect(mismatch.status == 65)
        #expect(mismatch.error.contains("walker2d") && mismatch.error.contains("but the data (data/hopper-medium-replay-tail25k.hdf5) has 11 and 3"), "\(mismatch.error)")
        #expect(mismatch.error.contains("configs/cpu/walker2d-medium.json"), "the file that names the environment: \(mismatch.error)")
        #expect(!FileManager.default.fileExists(atPath: out + "/checkpoint.safetensors"))

        // A valid preset made invalid by a flag: the flags are blamed, not the preset, and the
        // status is a usage error's.
        let byFlag = try CLI.run(["train", "--config", "configs/demo.json", "--head-count", "3", "--out", out])
        #expect(byFlag.status == 64)
        #expect(byFlag.error.contains("flags (over configs/demo.json)") && byFlag.error.contains("headCount"), "\(byFlag.error)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// A whole-episode context trains and evaluates end to end: windows longer than the
    /// bundled data's episodes are padded, with a warning; K beyond the episode limit is refused.
    @Test func longContextTrainsWarnsAndEvaluates() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("long").path
        let tiny = [
            "--dataset", "data/hopper-medium-replay-tail25k.hdf5", "--embedding-dimension", "16", "--layer-count", "1",
            "--head-count", "2", "--batch-size", "1", "--warmup-steps", "1", "--max-episode-length", "1000",
        ]
        let trained = try CLI.run(["train"] + tiny + ["--context-length", "1000", "--steps", "3", "--out", run])
        #expect(trained.status == 0, "\(trained.error)")
        #expect(trained.error.contains("warning: contextLength 1000 is longer than every episode"), "\(trained.error)")
        #expect(trained.error.contains("K 1000"), "the model summary names the context")
        let evaluated = try CLI.run([
            "evaluate", "--checkpoint", run + "/checkpoint.safetensors", "--episodes", "2", "--targets", "3600",
        ])
        #expect(evaluated.status == 0, "\(evaluated.error)")
        #expect(evaluated.output.contains("3600"), "\(evaluated.output)")

        let beyond = directory.appendingPathComponent("beyond").path
        let refused = try CLI.run(["train"] + tiny + ["--context-length", "1001", "--steps", "3", "--out", beyond])
        #expect(refused.status == 64, "a flag's value out of range")
        #expect(refused.error.contains("contextLength 1001 exceeds maxEpisodeLength 1000"), "\(refused.error)")
        #expect(!FileManager.default.fileExists(atPath: beyond), "nothing was started")
    }

    /// `bench context` runs its child processes and writes its table and plot (a smoke test
    /// of the benchmark's plumbing at tiny sizes; no timing is asserted).
    @Test func contextBenchmarkRuns() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let svg = directory.appendingPathComponent("context.svg").path
        let result = try CLI.run([
            "bench", "context", "--contexts", "4,8", "--timesteps", "16", "--steps", "1", "--warmup", "0",
            "--policy-context", "12", "--svg", svg,
        ])
        #expect(result.status == 0, "\(result.error)")
        for text in ["flow", "softmax", "K    8: flow is", "decisions 10–110"] {
            #expect(result.output.contains(text), "\(text) missing from: \(result.output)")
        }
        let image = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(image.hasPrefix("<svg") && image.contains("<polyline"))
        let bad = try CLI.run(["bench", "context", "--contexts", "0,20"])
        #expect(bad.status == 64 && bad.error.contains("--contexts"), "\(bad.error)")
    }

    /// `--help` lists a flag for every field of the configuration table, with its help line,
    /// and the command's own options.
    @Test func helpDocumentsEveryOption() throws {
        let help = try CLI.run(["train", "--help"])
        #expect(help.status == 0)
        for option in ["--config", "--out", "--resume", "--seed", "--threads"] {
            #expect(help.output.contains(option), "train --help lacks \(option)")
        }
        for field in TrainingConfiguration.fields where !["seed", "threads"].contains(field.name) {
            #expect(help.output.contains("--\(field.flag) \(field.valueHint)"), "train --help lacks --\(field.flag)")
            #expect(help.output.contains(field.help), "train --help lacks the help of --\(field.flag)")
        }
    }

    /// Flags land in the run's config.json; misspelt, repeated or malformed ones, and flags
    /// that --resume would ignore, are refused before anything starts.
    @Test func flagsAreAppliedOrRefusedNeverIgnored() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run").path
        let trained = try CLI.run(
            ["train"] + Self.tiny + [
                "--steps=2", "--attention", "softmax", "--evaluation-target", "-5", "--seed", "9", "--threads", "1",
                "--out", run,
            ])
        #expect(trained.status == 0, "\(trained.error)")
        let saved = try TrainingConfiguration.read(run + "/config.json")
        #expect(saved.steps == 2 && saved.attention == .softmax && saved.evaluationTarget == -5)
        #expect(saved.seed == 9 && saved.threads == 1 && saved.embeddingDimension == 16 && saved.batchSize == 4)

        let other = directory.appendingPathComponent("other").path
        for (arguments, message) in [
            (["--learning-rat", "3"], "unknown option '--learning-rat' (did you mean '--learning-rate'?)"),
            (["--steps", "x"], "--steps: takes a whole number, not 'x'"),
            (["--steps", "3", "--steps", "4"], "--steps is given twice"),
            (["--attention", "linear"], "one of flow, softmax"),
            (["stray"], "unexpected argument 'stray'"),
        ] {
            let refused = try CLI.run(["train"] + Self.tiny + arguments + ["--out", other])
            #expect(refused.status == 64 && refused.error.contains(message), "\(arguments): \(refused.error)")
        }
        #expect(!FileManager.default.fileExists(atPath: other), "nothing was started")

        // --resume: flags that decide what is learned are refused by name; the schedule and
        // bookkeeping may change, and the change is recorded.
        for flag in [["--seed", "1"], ["--batch-size", "8"], ["--attention", "flow"]] {
            let refused = try CLI.run(["train", "--resume", run] + flag)
            #expect(
                refused.status == 64 && refused.error.contains("\(flag[0]) cannot change"), "\(flag): \(refused.error)")
        }
        let resumed = try CLI.run(["train", "--resume", run, "--steps", "3", "--learning-rate", "2e-4", "--threads", "2"])
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.error.contains("changed on resume: learningRate"), "\(resumed.error)")
        let changed = try TrainingConfiguration.read(run + "/config.json")
        #expect(changed.learningRate == 2e-4 && changed.threads == 2 && changed.steps == 3)
        let shorter = try CLI.run(["train", "--resume", run, "--steps", "2"])
        #expect(shorter.status == 65 && shorter.error.contains("already at step 3"), "\(shorter.error)")
    }
}

/// A run written by DecisionFlow 0.2.0 (`Tests/Fixtures/run-0.2.0`, made by that release's
/// `d4rl-run train`, 4 steps on the bundled data) resumes, trains on and evaluates.
@Suite struct ReleaseCompatibilityTests {
    @Test func aRunFrom020ResumesAndEvaluates() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-020-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(
            at: CLI.packageRoot.appendingPathComponent("Tests/Fixtures/run-0.2.0"), to: directory)
        let resumed = try CLI.run(["train", "--resume", directory.path, "--steps", "8"])
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.error.contains("resuming \(directory.path) at step 4 of 8"), "\(resumed.error)")
        let log = try String(contentsOf: directory.appendingPathComponent("log.jsonl"), encoding: .utf8)
        let steps = log.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["step"] as? Int
        }
        #expect(steps == [2, 4, 6, 8])
        let evaluated = try CLI.run([
            "evaluate", "--checkpoint", directory.appendingPathComponent("checkpoint.safetensors").path, "--episodes", "2",
        ])
        #expect(evaluated.status == 0 && evaluated.output.contains("normalized"), "\(evaluated.error)")
    }
}
