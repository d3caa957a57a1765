import DecisionFlow
import DecisionFlowCheckpoints
import Foundation
import RLData
import Testing

/// The tool as a careless or hostile user drives it (issue #10, classes 6, 7, 9, 10, 11 and
/// 13): each case exits with the documented code and a message naming the file, key or flag,
/// and leaves nothing behind.
@Suite struct HostileInputTests {
    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// A small D4RL file of `width`-wide observations labelled `envID`, with optional qpos.
    func record(_ path: String, width: Int, actions: Int = 3, envID: String) throws {
        let writer = try TrajectoryWriter(
            path: path,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: width, actionDimension: actions, recordsNextObservations: true,
                qposDimension: 6, qvelDimension: 6))
        for row in 0..<40 {
            let observation = (0..<width).map { Float(row) / 40 + Float($0) / 100 }
            try writer.append(
                observation: observation, action: [Float](repeating: 0.1, count: actions), reward: 1,
                terminal: row % 20 == 19, nextObservation: observation,
                qpos: (0..<6).map { 1.25 + Double($0) / 100 },
                qvel: [Double](repeating: 0, count: 6))
        }
        writer.setMetadata("behavior/env_id", .string(envID))
        try writer.finish()
    }

    @Test func mislabelledEnvironmentsAreRefusedWhereverTheNameComesFrom() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let twelve = directory.appendingPathComponent("twelve.hdf5").path
        try record(twelve, width: 12, envID: "Hopper-v3")
        let run = directory.appendingPathComponent("run").path
        let trained = try CLI.run(["train", "--dataset", twelve, "--steps", "2", "--out", run])
        #expect(trained.status == 65 && trained.error.contains("mislabelled"), "\(trained.error)")
        #expect(!FileManager.default.fileExists(atPath: run), "no run directory was made")

        let scored = try CLI.run(["inspect", "data/hopper-medium-replay-tail25k.hdf5", "--env", "walker2d"])
        #expect(scored.status == 65 && scored.output.contains("cannot be scored as walker2d"), "\(scored.output)")
    }

    @Test func importRefusesBrokenWeightsStatisticsAndEnvironments() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A state dict under the reference's names, as PyTorch would save it.
        let configuration = ModelConfiguration(
            stateDimension: 11, actionDimension: 3, contextLength: 4, embeddingDimension: 16, layerCount: 1,
            maxEpisodeLength: 1000)
        let model = DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 1, threads: 1)
        func writeStateDict(_ path: String, poison: Bool) throws {
            var values = model.parameterValues
            if poison { values[3] = .nan }
            let data = try values.withUnsafeBufferPointer { all in
                try Safetensors.serialize(
                    model.layout.entries.map { ($0.name, $0.shape, UnsafeBufferPointer(rebasing: all[$0.range])) },
                    metadata: [:])
            }
            try data.write(to: URL(fileURLWithPath: path))
        }
        let clean = directory.appendingPathComponent("clean.safetensors").path
        let poisoned = directory.appendingPathComponent("poisoned.safetensors").path
        try writeStateDict(clean, poison: false)
        try writeStateDict(poisoned, poison: true)
        let good: [String: Any] = [
            "state_dim": 11, "act_dim": 3, "hidden_size": 16, "n_layer": 1, "n_head": 1, "max_length": 4,
            "max_ep_len": 1000, "state_mean": [Double](repeating: 0, count: 11),
            "state_std": [Double](repeating: 1, count: 11), "env": "hopper",
        ]
        let output = directory.appendingPathComponent("imported.safetensors").path
        func importing(_ description: [String: Any], weights: String) throws -> CLI.Result {
            let path = directory.appendingPathComponent("model.json").path
            try JSONSerialization.data(withJSONObject: description).write(to: URL(fileURLWithPath: path))
            return try CLI.run(["import", "--state-dict", weights, "--description", path, "--output", output])
        }
        var badStd = good
        badStd["state_std"] = [Double](repeating: 1, count: 10) + [-1]
        var badScale = good
        badScale["scale"] = 0
        var badEnv = good
        badEnv["env"] = "atlantis"
        var wrongEnv = good
        wrongEnv["env"] = "walker2d"
        for (description, weights, words) in [
            (good, poisoned, "holds nan at index 3"), (badStd, clean, "feature 10 is -1.0"),
            (badScale, clean, "rewardScale 0.0"), (badEnv, clean, "env 'atlantis'"),
            (wrongEnv, clean, "walker2d (Walker2d-v4) has observations of 17 and actions of 6, but the model (state_dim, act_dim) has 11 and 3"),
        ] {
            let refused = try importing(description, weights: weights)
            #expect(refused.status == 65 && refused.error.contains(words), "\(words): \(refused.error)")
            #expect(!FileManager.default.fileExists(atPath: output), "nothing was written")
        }
        let accepted = try importing(good, weights: clean)
        #expect(accepted.status == 0, "\(accepted.error)")
    }

    @Test func sliceNeverWritesOverItsSource() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("source.hdf5").path
        try FileManager.default.copyItem(atPath: "\(CLI.packageRoot.path)/data/hopper-medium-replay-tail25k.hdf5", toPath: source)
        let link = directory.appendingPathComponent("alias.hdf5").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: source)
        let before = try Data(contentsOf: URL(fileURLWithPath: source))
        for target in [source, link] {
            let refused = try CLI.run(["slice", source, "--output", target, "--max-steps", "2000"])
            #expect(refused.status == 64 && refused.error.contains("is the source file"), "\(refused.error)")
        }
        let intoDirectory = try CLI.run(["slice", source, "--output", directory.path, "--max-steps", "2000"])
        #expect(intoDirectory.status == 74 && intoDirectory.error.contains("is a directory"), "\(intoDirectory.error)")
        #expect(!intoDirectory.error.contains(".partial"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: source)) == before, "the source is untouched")

        // A device or FIFO is not replaced by a regular file (a slice to /dev/null did).
        let fifo = directory.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o644) == 0)
        // Nor is a FIFO read as a dataset (it would block the reader): refused at once.
        for command in [["inspect", fifo], ["slice", fifo, "-o", directory.appendingPathComponent("o.hdf5").path]] {
            let read = try CLI.run(command)
            #expect(read.status == 65 && (read.output + read.error).contains("FIFO"), "\(command): \(read.status) \(read.output) \(read.error)")
        }
        let toFIFO = try CLI.run(["slice", source, "--output", fifo, "--max-steps", "2000"])
        #expect(toFIFO.status == 74 && toFIFO.error.contains("not a regular file"), "\(toFIFO.error)")
        var status = stat()
        #expect(stat(fifo, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO, "the FIFO is still a FIFO")

        // A Minari source: neither its data file nor a folder inside it is written.
        let minari = directory.appendingPathComponent("mine-v0").path
        try FileManager.default.copyItem(
            atPath: CLI.shared.appendingPathComponent("datasets/minari/mujoco/hopper/medium-v0").path, toPath: minari)
        let data = try Data(contentsOf: URL(fileURLWithPath: minari + "/data/main_data.hdf5"))
        let overData = try CLI.run(["slice", minari, "--output", minari + "/data/main_data.hdf5", "--max-steps", "1000"])
        #expect(overData.status == 64 && overData.error.contains("is the source file"), "\(overData.error)")
        let inside = try CLI.run(["slice", minari, "--output", minari + "/data", "--minari-id", "z/p-v0", "--max-steps", "1000"])
        #expect(inside.status == 64 && inside.error.contains("lies inside the source dataset"), "\(inside.error)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: minari + "/data/main_data.hdf5")) == data, "the source is untouched")
        #expect(try FileManager.default.contentsOfDirectory(atPath: minari + "/data").sorted() == ["main_data.hdf5", "metadata.json"])
    }

    @Test func edgeValuesAndOddPathsGetMessagesNotTraps() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (arguments, code, words) in [
            (["bench", "policy", "--decisions", "0"], Int32(64), "--decisions"),
            (["bench", "policy", "--episodes", "0"], 64, "--episodes"),
            (["bench", "policy", "--agents", "1,,2"], 64, "no empty item"),
            (["bench", "policy", "--episodes", "5000"], 64, "--episodes"),
            (["bench", "model", "--steps", "0"], 64, "--steps"),
            (["replay", "--limit=-3", "x.hdf5"], 64, "--limit"),
            (["evaluate", "--checkpoint", directory.path, "--targets", ""], 64, "--targets"),
            (["evaluate", "--checkpoint", directory.path, "--threads", "0"], 64, "--threads"),
            (["evaluate", "--checkpoint", directory.path], 65, "is a directory"),
            // --resume names what is wrong with the path: missing, a file, or a folder without a run.
            (["train", "--resume", directory.path + "/no-such-run"], 65, "does not exist; name the run directory"),
            (["train", "--resume", "configs/demo.json"], 65, "is a file, not a run directory"),
            (["train", "--resume", directory.path], 65, "holds no checkpoint.safetensors"),
            // A configuration value out of range is a usage error when a flag gave it.
            (["train", "--config", "configs/demo.json", "--learning-rate", "nan", "--out", directory.path + "/r"], 64, "learningRate"),
            (["train", "--config", "configs/demo.json", "--steps", "-5", "--out", directory.path + "/r"], 64, "steps"),
            (["train", "--config", "configs/demo.json", "--dropout", "1.5", "--out", directory.path + "/r"], 64, "dropout"),
            // The run directory cannot be made: an I/O failure naming the cause.
            (["train", "--config", "configs/demo.json", "--steps", "2", "--out", "configs/demo.json/r"], 74, "is a file, not a folder"),
            (["train", "--config", "configs/demo.json", "--steps", "2", "--out", "configs/demo.json"], 74, "configs/demo.json"),
            // A negative number after a space is the flag's value, checked like any other.
            (["bench", "policy", "--decisions", "-5"], 64, "--decisions must be from 1"),
            (["bench", "context", "--warmup", "-1", "--steps", "5"], 64, "--warmup must be from 0"),
            (["sweep", "run", directory.path, "--index", "-1"], 64, "--index must be at least 0"),
            // A list with nothing in it measures or reports nothing: a usage error, not exit 0.
            (["bench", "envs", "--envs", ",,"], 64, "no empty item"),
            (["bench", "model", "--configs", ""], 64, "no empty item"),
            (["help", "nosuch"], 64, "has no command 'nosuch'"),
            // A misspelt command is named as such, not blamed on the flag after it.
            (["bench", "training", "--steps", "0"], 64, "`d4rl-run bench` has no command 'training' (did you mean 'train'?)"),
            (["sweep", "stats", directory.path], 64, "`d4rl-run sweep` has no command 'stats' (did you mean 'status'?)"),
            (["help", "sweep", "rn"], 64, "`d4rl-run sweep` has no command 'rn'"),
            (["help", "sweep", "plan", "extra"], 64, "`d4rl-run sweep plan` has no command 'extra'"),
            (["train", "--config", "configs/demo.json", "--out", ""], 64, "--out names nothing"),
            // A report or plot never replaces the files it reads, nor one output another.
            (["report", directory.path, "--csv", directory.path + "/runs/a/../sweep.json"], 64, "would replace a file of"),
            (["plot", directory.path + "/run", "-o", directory.path + "/run/log.jsonl"], 64, "would replace a file of"),
            (["report", directory.path, "--json", directory.path + "/t.json", "--csv", directory.path + "/t.json"], 64, "name the same file"),
        ] {
            let result = try CLI.run(arguments)
            #expect(result.status == code && result.error.contains(words), "\(arguments): \(result.status) \(result.error)")
        }
        let config = directory.appendingPathComponent("fraction.json").path
        try Data(#"{"datasets": ["data/hopper-medium-replay-tail25k.hdf5"], "steps": 10.5}"#.utf8).write(
            to: URL(fileURLWithPath: config))
        let fraction = try CLI.run(["train", "--config", config, "--out", directory.path + "/r"])
        #expect(fraction.error.contains("field 'steps' should be a whole number (it is 10.5)"), "\(fraction.error)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/r"))
    }

    @Test func unreadableDataIsExplained() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        // h5py's lzf filter, which Debian's libhdf5 lacks: named, not called corrupt.
        let lzf = try CLI.run(["inspect", "Tests/Fixtures/lzf-compressed.hdf5"])
        #expect(lzf.status == 65 && lzf.output.contains("lzf(32000), a filter this libhdf5 does not have"), "\(lzf.output)")
        // A file that crashes libhdf5 1.10.8 itself (found by fuzzing): refused, not a crash.
        let forged = "Fuzz/Known/libhdf5-1.10.8-object-header-out-of-bounds.hdf5"
        let inspected = try CLI.run(["inspect", forged])
        #expect(inspected.status == 65 && inspected.output.contains("crashed libhdf5"), "\(inspected.output)")
        let run = directory.appendingPathComponent("run").path
        let trained = try CLI.run(["train", "--dataset", forged, "--out", run])
        #expect(trained.status == 65 && trained.error.contains("crashed libhdf5"), "\(trained.error)")
        #expect(!FileManager.default.fileExists(atPath: run))
        // NaN in a recorded simulator state: the replay names the file, key and row.
        // The recorder refuses NaN, so the file is written key by key, as another tool might.
        let file = directory.appendingPathComponent("nan-qpos.hdf5").path
        do {  // closed before the replay opens it
            let hdf5 = try HDF5File.create(file)
            let n = 20
            try hdf5.write((0..<(n * 11)).map { Float($0 % 11) / 10 }, to: "observations", type: .float32, shape: [n, 11])
            try hdf5.write((0..<(n * 11)).map { Float($0 % 11) / 10 }, to: "next_observations", type: .float32, shape: [n, 11])
            try hdf5.write([Float](repeating: 0.1, count: n * 3), to: "actions", type: .float32, shape: [n, 3])
            try hdf5.write([Float](repeating: 1, count: n), to: "rewards", type: .float32, shape: [n])
            try hdf5.write((0..<n).map { $0 == n - 1 }, to: "terminals")
            try hdf5.write(
                (0..<(n * 6)).map { $0 == 7 * 6 + 2 ? Double.nan : 1.25 }, to: "infos/qpos", type: .float64, shape: [n, 6])
            try hdf5.write([Double](repeating: 0, count: n * 6), to: "infos/qvel", type: .float64, shape: [n, 6])
        }
        let replay = try CLI.run(["replay", file, "--env", "hopper"])
        #expect(replay.status == 65, "\(replay.error)")
        #expect(replay.error.contains(file) && replay.error.contains("infos/qpos") && replay.error.contains("row 7"), "\(replay.error)")
    }

    /// A file of a few kilobytes that declares 2·10⁸ steps (chunks never written), as a D4RL
    /// file and as a Minari episode: refused from what it declares against what it stores,
    /// naming the key, before anything is allocated; no run directory is made. (Measured by
    /// hand, README *Untrusted inputs*: 0.05 s and 39 MB of peak memory.)
    @Test func aFileDeclaringStepsItDoesNotStoreIsRefusedAtOnce() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let rows = 200_000_000
        let hollow = HDF5DatasetLayout(chunkRows: 100_000, gzipLevel: nil, shuffle: false, extendable: false)
        let d4rl = directory.appendingPathComponent("hollow.hdf5").path
        do {
            let file = try HDF5File.create(d4rl)
            for (key, width) in [("observations", 11), ("actions", 3), ("rewards", 0), ("terminals", 0), ("timeouts", 0)] {
                _ = try file.createDataset(key, type: .float32, shape: width > 0 ? [rows, width] : [rows], layout: hollow)
            }
        }
        let minari = directory.appendingPathComponent("hollow-v0").path
        do {
            try FileManager.default.createDirectory(atPath: minari + "/data", withIntermediateDirectories: true)
            let metadata = #"{"total_episodes": 1, "total_steps": 200000000, "data_format": "hdf5", "#
                + #""observation_space": "{\"type\": \"Box\", \"dtype\": \"float64\", \"shape\": [11]}", "#
                + #""action_space": "{\"type\": \"Box\", \"dtype\": \"float32\", \"shape\": [3]}"}"#
            try metadata.write(toFile: minari + "/data/metadata.json", atomically: true, encoding: .utf8)
            let file = try HDF5File.create(minari + "/data/main_data.hdf5")
            try file.createGroup("episode_0")
            try file.setAttribute("id", to: Int64(0), on: "episode_0")
            for (key, rows, width) in [
                ("observations", rows + 1, 11), ("actions", rows, 3), ("rewards", rows, 0), ("terminations", rows, 0),
                ("truncations", rows, 0),
            ] {
                _ = try file.createDataset(
                    "episode_0/\(key)", type: .float64, shape: width > 0 ? [rows, width] : [rows], layout: hollow)
            }
        }
        for (dataset, size, key) in [
            (d4rl, try FileManager.default.attributesOfItem(atPath: d4rl)[.size] as? Int, "observations"),
            (minari, try FileManager.default.attributesOfItem(atPath: minari + "/data/main_data.hdf5")[.size] as? Int, "episode_0/actions"),
        ] {
            #expect((size ?? .max) < 10_000, "\(dataset) is a few kilobytes (\(size ?? -1) bytes)")
            let inspected = try CLI.run(["inspect", dataset])
            #expect(inspected.status == 65, "\(inspected.output)\(inspected.error)")
            #expect(inspected.output.contains("key '\(key)'") && inspected.output.contains("stores only 0 bytes"), "\(inspected.output)")
            let run = directory.appendingPathComponent("run").path
            let trained = try CLI.run(["train", "--dataset", dataset, "--steps", "2", "--out", run])
            #expect(trained.status == 65 && trained.error.contains("declares 200000000 rows"), "\(trained.error)")
            #expect(!FileManager.default.fileExists(atPath: run))
        }
    }
}
