import DecisionFlow
import DecisionFlowCheckpoints
import Foundation
import HuggingFaceTestSupport
import TestSupport
import Testing

@Suite struct HuggingFaceImportTests {
    /// transformers' action predictions, at every position its attention mask keeps (it pads
    /// on the left and masks with the most negative float; we with −10⁴: padded positions
    /// differ by convention).
    @Test(arguments: ["hf_dt_small", "hf_dt_hopper_shape"])
    func importedModelsPredictTransformersActions(name: String) throws {
        let scratch = try ScratchDirectory()
        let contents = try HuggingFaceFixtures.load(name)
        let (folder, description) = try HuggingFaceFixtures.hubFolder(name, in: scratch)
        let imported = try Checkpoint.importing(huggingFace: folder, description: description)
        #expect(imported.metadata["import_notes"]?.contains("row 0 of encoder.wpe") == true)
        let path = scratch.path("\(name).safetensors")
        try imported.write(to: path)
        let checkpoint = try Checkpoint.read(path)
        #expect(checkpoint.configuration.attention == .softmax && checkpoint.environment == "hopper")

        let states = try #require(contents.tensors["input/states"])
        let (B, K) = (states.shape[0], states.shape[1])
        let (S, A) = (checkpoint.configuration.stateDimension, checkpoint.configuration.actionDimension)
        let model = DecisionTransformer(configuration: checkpoint.configuration, batchCapacity: B, seed: 0)
        try model.load(checkpoint, source: path)
        let batch = TrajectoryBatch(capacity: B, timesteps: K, stateDimension: S, actionDimension: A)
        batch.states = states.values
        batch.actions = try #require(contents.tensors["input/actions"]).values
        batch.returnsToGo = try #require(contents.tensors["input/returns_to_go"]).values
        batch.timestepIndices = try #require(contents.tensors["input/timesteps"]?.integers).map { Int32($0) }
        let mask = try #require(contents.tensors["input/attention_mask"]).values
        batch.mask = mask
        #expect(B >= 2 && mask[0] == 1 && mask[K] == 0, "the fixture pads its second sequence on the left")
        _ = model.forward(batch, training: false)

        let kept = mask.indices.filter { mask[$0] == 1 }
        func atKeptPositions(_ values: [Float], width: Int) -> [Float] {
            kept.flatMap { values[($0 * width)..<(($0 + 1) * width)] }
        }
        let actions = (0..<B).flatMap { model.actionPredictions(sequence: $0) }
        #expect(kept.count >= B * K / 2, "most positions are compared")
        expectClose(
            atKeptPositions(actions, width: A),
            atKeptPositions(try #require(contents.tensors["output/action_preds"]).values, width: A), atol: 1e-5,
            rtol: 1e-4, "\(name) action_preds")
    }

    /// Without the folded position row the predictions are wrong: the fold is what makes
    /// them agree, not something the comparison would accept anyway.
    @Test func withoutThePositionRowThePredictionsDiffer() throws {
        let scratch = try ScratchDirectory()
        let contents = try HuggingFaceFixtures.load("hf_dt_small")
        let (folder, description) = try HuggingFaceFixtures.hubFolder(
            "hf_dt_small", in: scratch,
            tensors: { tensors in
                let wpe = tensors["encoder.wpe.weight"]!
                tensors["encoder.wpe.weight"] = SafetensorsTensor(
                    shape: wpe.shape, values: [Float](repeating: 0, count: wpe.values.count))
            })
        let checkpoint = try Checkpoint.importing(huggingFace: folder, description: description)
        let C = checkpoint.configuration.embeddingDimension
        let layout = ParameterLayout(configuration: checkpoint.configuration)
        let entry = try #require(layout.entries.first { $0.name == "embed_ln.bias" })
        let stored = Array(checkpoint.parameters[entry.offset..<(entry.offset + C)])
        #expect(stored == (try #require(contents.tensors["param/embed_ln.bias"])).values, "nothing folded: wpe row 0 is zero")
        let withRow = try Checkpoint.importing(
            huggingFace: try HuggingFaceFixtures.hubFolder("hf_dt_small", in: scratch).folder, description: description)
        let wpe = try #require(contents.tensors["param/encoder.wpe.weight"]).values
        let folded = Array(withRow.parameters[entry.offset..<(entry.offset + C)])
        #expect(folded == zip(stored, wpe.prefix(C)).map { $0 + $1 })
        #expect(folded != stored)
    }

    /// Hostile folders: each is refused with an error that names the file and what is wrong.
    @Test func badFoldersAreRefusedNamingTheProblem() throws {
        let scratch = try ScratchDirectory()
        typealias Edit = (inout [String: Any]) -> Void
        typealias TensorEdit = (inout [String: SafetensorsTensor]) -> Void
        let cases: [(String, Edit, Edit, TensorEdit)] = [
            ("lacks the field 'state_dim'", { $0["state_dim"] = nil }, { _ in }, { _ in }),
            ("field 'action_tanh' has the wrong type", { $0["action_tanh"] = "yes" }, { _ in }, { _ in }),
            ("activation_function 'gelu' is not one DecisionFlow has", { $0["activation_function"] = "gelu" }, { _ in }, { _ in }),
            ("hidden_size must be at most 65536", { $0["hidden_size"] = 1 << 40 }, { _ in }, { _ in }),
            ("state_dim must be at least 1 (it is -3)", { $0["state_dim"] = -3 }, { _ in }, { _ in }),
            ("n_head 3 must divide hidden_size 32", { $0["n_head"] = 3 }, { _ in }, { _ in }),
            ("transformers' embed_ln always uses 1e-5", { $0["layer_norm_epsilon"] = 0.1 }, { _ in }, { _ in }),
            ("max_length (K) is 0", { _ in }, { $0["max_length"] = 0 }, { _ in }),
            ("unknown field 'sacle' (did you mean 'scale'?)", { _ in }, { $0["sacle"] = 1 }, { _ in }),
            ("disagrees with", { _ in }, { $0["hidden_size"] = 64 }, { _ in }),
            ("state_mean and state_std need 11 values", { _ in }, { $0["state_std"] = [1.0, 1.0] }, { _ in }),
            ("lacks the field 'max_length'", { _ in }, { $0["max_length"] = nil }, { _ in }),
            ("tensor 'predict_state.weight' is missing", { _ in }, { _ in }, { $0["predict_state.weight"] = nil }),
            ("tensor 'encoder.h.0.ln_2.bias' is missing", { _ in }, { _ in }, { $0["encoder.h.0.ln_2.bias"] = nil }),
            ("tensor 'encoder.wpe.weight' is missing", { _ in }, { _ in }, { $0["encoder.wpe.weight"] = nil }),
            (
                "tensor 'lm_head.weight' has no place in this model", { _ in }, { _ in },
                { $0["lm_head.weight"] = SafetensorsTensor(shape: [2], values: [1, 2]) }
            ),
            (
                "tensor 'embed_ln.bias' has shape [31]", { _ in }, { _ in },
                { $0["embed_ln.bias"] = SafetensorsTensor(shape: [31], values: [Float](repeating: 0, count: 31)) }
            ),
            (
                "encoder.wpe.weight (row 0)' holds nan", { _ in }, { _ in },
                { tensors in
                    var values = tensors["encoder.wpe.weight"]!.values
                    values[5] = .nan
                    tensors["encoder.wpe.weight"] = SafetensorsTensor(shape: [1024, 32], values: values)
                }
            ),
            (
                "tensor 'encoder.h.1.mlp.c_fc.weight' holds inf", { _ in }, { _ in },
                { tensors in
                    var values = tensors["encoder.h.1.mlp.c_fc.weight"]!.values
                    values[7] = .infinity
                    tensors["encoder.h.1.mlp.c_fc.weight"] = SafetensorsTensor(shape: [32, 128], values: values)
                }
            ),
        ]
        for (words, config, description, tensors) in cases {
            let (folder, descriptionPath) = try HuggingFaceFixtures.hubFolder(
                "hf_dt_small", in: scratch, config: config, description: description, tensors: tensors)
            #expect {
                try Checkpoint.importing(huggingFace: folder, description: descriptionPath)
            } throws: { error in
                error is CheckpointError && "\(error)".contains(words)
            }
        }
        // A folder with only pytorch_model.bin says how to get safetensors.
        let (folder, descriptionPath) = try HuggingFaceFixtures.hubFolder("hf_dt_small", in: scratch)
        try FileManager.default.moveItem(atPath: folder + "/model.safetensors", toPath: folder + "/pytorch_model.bin")
        #expect {
            try Checkpoint.importing(huggingFace: folder, description: descriptionPath)
        } throws: { error in
            "\(error)".contains("save_pretrained(safe_serialization=True)")
        }
    }
}
