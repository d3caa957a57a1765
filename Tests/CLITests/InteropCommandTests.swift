import DecisionFlow
import DecisionFlowCheckpoints
import Foundation
import HuggingFaceTestSupport
import TestSupport
import Testing

/// Minari datasets and the PyTorch round trip through the binary, as a user would run them.
@Suite struct InteropCommandTests {
    static let minariRoot = CLI.shared.appendingPathComponent("datasets/minari").path

    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-interop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func inspectAndTrainTakeAMinariDatasetID() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let environment = ["MINARI_DATASETS_PATH": Self.minariRoot]
        let inspected = try CLI.run(["inspect", "--json", "mujoco/halfcheetah/random-dict-v0"], environment: environment)
        #expect(inspected.status == 0, "\(inspected.error)")
        let report = try #require((try JSONSerialization.jsonObject(with: Data(inspected.output.utf8)) as? [[String: Any]])?.first)
        #expect(report["steps"] as? Int == 25_000 && report["observationDimension"] as? Int == 17)
        let metadata = try #require(report["metadata"] as? [String: Any])
        #expect(metadata["observation_layout"] as? String == "desired_goal[0..<2], observation[2..<17]")
        #expect(report["environment"] as? String == "halfcheetah")

        let trained = try CLI.run(
            ["train"] + TrainCommandTests.tiny.dropFirst(2) + [
                "--dataset", "mujoco/hopper/medium-v0", "--steps", "3", "--out", directory.appendingPathComponent("run").path,
            ], environment: environment)
        #expect(trained.status == 0, "\(trained.error)")
        #expect(trained.error.contains("50000 steps, 164 trajectories"), "\(trained.error)")

        // Without the datasets root, the id is not found, and the message says where it looked.
        let missing = try CLI.run(["inspect", "mujoco/hopper/medium-v0"], environment: ["MINARI_DATASETS_PATH": directory.path])
        #expect(missing.status == 65)
        #expect(missing.output.contains("MINARI_DATASETS_PATH") || missing.error.contains("MINARI_DATASETS_PATH"))
    }

    @Test func sliceWritesAMinariDatasetThatReadsBack() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("mine/hopper/cut-v0").path
        let source = CLI.shared.appendingPathComponent("datasets/hopper-medium.hdf5").path
        let sliced = try CLI.run(["slice", source, "-o", output, "--minari-id", "mine/hopper/cut-v0", "--max-steps", "3000"])
        #expect(sliced.status == 0, "\(sliced.error)")
        let metadata = try String(contentsOfFile: output + "/data/metadata.json", encoding: .utf8)
        #expect(metadata.contains("\"dataset_id\": \"mine/hopper/cut-v0\"") && metadata.contains("Hopper-v4"))
        let inspected = try CLI.run(["inspect", "--json", output])
        #expect(inspected.status == 0, "\(inspected.error)")
        let report = try #require((try JSONSerialization.jsonObject(with: Data(inspected.output.utf8)) as? [[String: Any]])?.first)
        let steps = try #require(report["steps"] as? Int)
        #expect(steps <= 3000 && steps > 2000)
        // A second slice into the same folder never replaces the dataset.
        let again = try CLI.run(["slice", source, "-o", output, "--minari-id", "mine/hopper/cut-v0", "--max-steps", "1000"])
        #expect(again.status == 74 && again.error.contains("already holds a dataset"), "\(again.error)")
    }

    @Test func exportThenImportIsBitwiseAndTheImportEvaluates() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run").path
        let trained = try CLI.run(["train"] + TrainCommandTests.tiny + ["--attention", "softmax", "--steps", "3", "--out", run])
        #expect(trained.status == 0, "\(trained.error)")
        let exported = directory.appendingPathComponent("export").path
        let export = try CLI.run(["export", run + "/checkpoint.safetensors", "-o", exported])
        #expect(export.status == 0, "\(export.error)")
        let stateDict = try Safetensors.read(exported + "/model.safetensors")
        #expect(stateDict.tensors["transformer.h.0.attn.bias"]?.dtype == .uint8, "GPT-2's mask is recreated")
        #expect(!stateDict.tensors.keys.contains { $0.hasPrefix("optimizer.") })

        let imported = directory.appendingPathComponent("imported.safetensors").path
        let importing = try CLI.run([
            "import", "--state-dict", exported + "/model.safetensors", "--description", exported + "/description.json", "-o",
            imported,
        ])
        #expect(importing.status == 0, "\(importing.error)")
        let original = try Checkpoint.read(run + "/checkpoint.safetensors")
        let back = try Checkpoint.read(imported)
        #expect(back.parameters.map(\.bitPattern) == original.parameters.map(\.bitPattern))
        #expect(back.encoding == original.encoding && back.configuration == original.configuration)

        let evaluated = try CLI.run(["evaluate", "--checkpoint", imported, "--episodes", "1", "--targets", "3600", "--json"])
        #expect(evaluated.status == 0, "\(evaluated.error)")
        #expect(evaluated.output.contains("\"normalizedMean\""))
    }

    /// Export never loses a file: not the checkpoint it reads, not another model's export
    /// (unless --force), and not half of its own output when one file cannot be written.
    /// A Hub folder imports, says what it folded, and evaluates; a broken one writes nothing;
    /// the two kinds of model cannot be given together.
    @Test func importTakesAHuggingFaceFolder() throws {
        let scratch = try ScratchDirectory()
        let output = scratch.path("imported.safetensors")
        let (folder, description) = try HuggingFaceFixtures.hubFolder("hf_dt_hopper_shape", in: scratch)
        let imported = try CLI.run(["import", "--huggingface", folder, "--description", description, "-o", output])
        #expect(imported.status == 0, "\(imported.error)")
        #expect(imported.error.contains("note: transformers' DecisionTransformerModel adds row 0 of encoder.wpe"))
        #expect(imported.output.contains("softmax attention, S 11, A 3, C 128, 3 layers"), "\(imported.output)")
        let evaluated = try CLI.run(["evaluate", "--checkpoint", output, "--episodes", "1", "--targets", "3600"])
        #expect(evaluated.status == 0 && evaluated.output.contains("in hopper (Hopper-v4)"), "\(evaluated.error)")

        // The output never replaces an input, goes through a link, or replaces a file unasked.
        let ownWeights = try CLI.run([
            "import", "--huggingface", folder, "--description", description, "-o", folder + "/model.safetensors",
        ])
        #expect(ownWeights.status == 64 && ownWeights.error.contains("is an input of this command"), "\(ownWeights.error)")
        let existing = try CLI.run(["import", "--huggingface", folder, "--description", description, "-o", output])
        #expect(existing.status == 64 && existing.error.contains("already exists"), "\(existing.error)")
        let link = scratch.path("link.safetensors")
        let elsewhere = scratch.path("someone-elses.txt")
        try Data("keep".utf8).write(to: URL(fileURLWithPath: elsewhere))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: elsewhere)
        let through = try CLI.run(["import", "--huggingface", folder, "--description", description, "-o", link, "--force"])
        #expect(through.status == 64 && through.error.contains("symbolic link"), "\(through.error)")
        #expect(try String(contentsOfFile: elsewhere, encoding: .utf8) == "keep")

        let broken = scratch.path("broken.safetensors")
        let (badFolder, badDescription) = try HuggingFaceFixtures.hubFolder(
            "hf_dt_small", in: scratch, config: { $0["activation_function"] = "swish" })
        let refused = try CLI.run(["import", "--huggingface", badFolder, "--description", badDescription, "-o", broken])
        #expect(refused.status == 65 && refused.error.contains("activation_function 'swish'"), "\(refused.error)")
        #expect(!FileManager.default.fileExists(atPath: broken), "nothing was written")
        let both = try CLI.run([
            "import", "--huggingface", folder, "--state-dict", output, "--description", description, "-o", broken,
        ])
        #expect(both.status == 64 && both.error.contains("name two models"), "\(both.error)")
        #expect(!FileManager.default.fileExists(atPath: broken))
    }

    /// `export --onnx` writes a model and refuses to replace one without --force; `predict`
    /// computes the reference's action predictions from a fixture's inputs, and refuses
    /// inputs of the wrong shape.
    @Test func onnxExportAndPredict() throws {
        let scratch = try ScratchDirectory()
        let fixture = CLI.shared.appendingPathComponent("fixtures/reference/dt_flow_small.safetensors").path
        let description = scratch.path("description.json")
        try Data(
            #"{"state_dim": 11, "act_dim": 3, "hidden_size": 32, "n_layer": 2, "n_head": 2, "n_inner": 128, "max_length": 5, "max_ep_len": 100, "attention": "flow", "scale": 1, "state_mean": [0,0,0,0,0,0,0,0,0,0,0], "state_std": [1,1,1,1,1,1,1,1,1,1,1]}"#
                .utf8
        ).write(to: URL(fileURLWithPath: description))
        let checkpoint = scratch.path("flow.safetensors")
        let imported = try CLI.run([
            "import", "--state-dict", fixture, "--prefix", "param/", "--description", description, "-o", checkpoint,
        ])
        try #require(imported.status == 0, "\(imported.error)")

        let onnx = scratch.path("flow.onnx")
        let exported = try CLI.run(["export", checkpoint, "--onnx", onnx])
        #expect(exported.status == 0 && exported.output.contains("ONNX opset 17"), "\(exported.error)")
        let first = try Data(contentsOf: URL(fileURLWithPath: onnx))
        let again = try CLI.run(["export", checkpoint, "--onnx", onnx])
        #expect(again.status == 64 && again.error.contains("already exists"), "\(again.error)")
        #expect(try CLI.run(["export", checkpoint, "--onnx", onnx, "--force"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: onnx)) == first, "the same checkpoint, the same bytes")
        #expect(try CLI.run(["export", checkpoint, "--onnx", onnx, "-o", scratch.path("dir")]).status == 64)

        let predictions = scratch.path("predictions.safetensors")
        let predicted = try CLI.run(["predict", "--checkpoint", checkpoint, "--inputs", fixture, "-o", predictions])
        #expect(predicted.status == 0, "\(predicted.error)")
        let ours = try #require(try Safetensors.read(predictions).tensors["action_preds"])
        let reference = try #require(try Safetensors.read(fixture).tensors["output/action_preds"])
        #expect(ours.shape == [3, 5, 3])
        expectClose(ours.values, reference.values, atol: 1e-5, rtol: 1e-4, "predict against the reference")
        let wrong = try CLI.run(["predict", "--checkpoint", checkpoint, "--inputs", checkpoint, "-o", scratch.path("x")])
        #expect(wrong.status == 65 && wrong.error.contains("has no tensor 'states'"), "\(wrong.error)")
        let overCheckpoint = try CLI.run(["predict", "--checkpoint", checkpoint, "--inputs", fixture, "-o", checkpoint, "--force"])
        #expect(overCheckpoint.status == 64 && overCheckpoint.error.contains("is an input of this command"))
        // A mask other than 0 and 1 is refused.
        var tensors = try Safetensors.read(fixture).tensors.filter { $0.key.hasPrefix("input/") }
        var mask = try #require(tensors["input/attention_mask"]).values
        mask[4] = 0.5
        tensors["input/attention_mask"] = SafetensorsTensor(shape: [3, 5], values: mask)
        let raw = tensors.keys.sorted().map { (name: $0, dtype: tensors[$0]!.dtype, shape: tensors[$0]!.shape, bytes: [UInt8](tensors[$0]!.bytes)) }
        let halfMask = scratch.path("half-mask.safetensors")
        try Safetensors.serialize(raw: raw, metadata: [:]).write(to: URL(fileURLWithPath: halfMask))
        let half = try CLI.run(["predict", "--checkpoint", checkpoint, "--inputs", halfMask, "-o", scratch.path("y")])
        #expect(half.status == 65 && half.error.contains("attention_mask holds 0.5 at index 4"), "\(half.error)")
    }

    @Test func exportNeverLosesAFile() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let run = directory.appendingPathComponent("run").path
        let trained = try CLI.run(["train"] + TrainCommandTests.tiny + ["--steps", "3", "--out", run])
        try #require(trained.status == 0, "\(trained.error)")
        func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

        // The checkpoint under the export's own name, exported into its folder.
        let folder = directory.appendingPathComponent("named").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let source = folder + "/model.safetensors"
        try FileManager.default.copyItem(atPath: run + "/checkpoint.safetensors", toPath: source)
        let before = try bytes(source)
        for flags in [[], ["--force"]] {
            let over = try CLI.run(["export", source, "-o", folder] + flags)
            #expect(over.status == 64 && over.error.contains("is the checkpoint being exported"), "\(over.status) \(over.error)")
            #expect(try bytes(source) == before)
        }
        // Beside the checkpoint, in its run directory: only with --force.
        let beside = try CLI.run(["export", run + "/checkpoint.safetensors", "-o", run])
        #expect(beside.status == 64 && beside.error.contains("--force"), "\(beside.error)")

        // Over another model's export: refused, then replaced with --force.
        let exported = directory.appendingPathComponent("export").path
        #expect(try CLI.run(["export", run + "/checkpoint.safetensors", "-o", exported]).status == 0)
        let first = try bytes(exported + "/description.json")
        try Data("{}".utf8).write(to: URL(fileURLWithPath: exported + "/description.json"))
        let again = try CLI.run(["export", run + "/checkpoint.safetensors", "-o", exported])
        #expect(again.status == 64 && again.error.contains("already holds an export"), "\(again.error)")
        #expect(try bytes(exported + "/description.json") == Data("{}".utf8))
        let forced = try CLI.run(["export", run + "/checkpoint.safetensors", "-o", exported, "--force"])
        #expect(forced.status == 0, "\(forced.error)")
        #expect(try bytes(exported + "/description.json") == first)

        // One output that cannot be written: nothing is replaced.
        let model = try bytes(exported + "/model.safetensors")
        try FileManager.default.removeItem(atPath: exported + "/description.json")
        try FileManager.default.createDirectory(atPath: exported + "/description.json", withIntermediateDirectories: false)
        let blocked = try CLI.run(["export", run + "/checkpoint.safetensors", "-o", exported, "--force"])
        #expect(blocked.status == 74 && blocked.error.contains("is a directory"), "\(blocked.status) \(blocked.error)")
        #expect(try bytes(exported + "/model.safetensors") == model)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: exported).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "\(leftovers)")

        // A link in the folder is not written through, even with --force: the file it names
        // (the run's config.json) stays as it was.
        try FileManager.default.removeItem(atPath: exported + "/description.json")
        try FileManager.default.createSymbolicLink(atPath: exported + "/description.json", withDestinationPath: run + "/config.json")
        let config = try bytes(run + "/config.json")
        let linked = try CLI.run(["export", run + "/checkpoint.safetensors", "-o", exported, "--force"])
        #expect(linked.status == 64 && linked.error.contains("is a symbolic link"), "\(linked.status) \(linked.error)")
        #expect(try bytes(run + "/config.json") == config)
        #expect(try bytes(exported + "/model.safetensors") == model)
    }
}
