import DecisionFlowCheckpoints
import Foundation
import TestSupport

/// transformers' `DecisionTransformerModel` (../shared/fixtures/huggingface), imported from the
/// Hub's layout through the public API and run here.
public enum HuggingFaceFixtures {
    /// A value the fixture must have.
    static func required<T>(_ value: T?, _ what: @autoclosure () -> String = "a value") throws -> T {
        guard let value else { throw FixtureError(description: "the fixture lacks \(what())") }
        return value
    }

    struct FixtureError: Error, CustomStringConvertible { var description: String }

    public static let directory = SharedFolder.url.appendingPathComponent("fixtures/huggingface")

    public static func load(_ name: String) throws -> Safetensors.Contents {
        try Safetensors.read(directory.appendingPathComponent("\(name).safetensors").path)
    }

    /// `config.json` as transformers writes it for the fixture's model, with fields the
    /// importer must ignore, and `edit` applied.
    public static func config(_ metadata: [String: String], edit: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
        func int(_ key: String) throws -> Int { try required(metadata[key].flatMap { Int($0) }, "metadata \(key)") }
        var fields: [String: Any] = [
            "state_dim": try int("state_dim"), "act_dim": try int("act_dim"), "hidden_size": try int("hidden_size"),
            "n_layer": try int("n_layer"), "n_head": try int("n_head"), "n_inner": try int("n_inner"),
            "activation_function": metadata["activation"] ?? "relu", "max_ep_len": try int("max_ep_len"),
            "action_tanh": metadata["action_tanh"] == "true", "layer_norm_epsilon": 1e-5,
            // What else a Hub config.json holds.
            "architectures": ["DecisionTransformerModel"], "model_type": "decision_transformer", "vocab_size": 1,
            "n_positions": 1024, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
            "initializer_range": 0.02, "scale_attn_weights": true, "use_cache": true,
            "transformers_version": "4.30.2", "torch_dtype": "float32",
        ]
        edit(&fields)
        return try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    }

    /// The description `import` needs besides config.json: K and identity statistics (the
    /// fixture's inputs are already the model's).
    public static func description(_ metadata: [String: String], edit: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
        let S = try required(metadata["state_dim"].flatMap { Int($0) })
        var fields: [String: Any] = [
            "max_length": try required(metadata["K"].flatMap { Int($0) }), "state_mean": [Double](repeating: 0, count: S),
            "state_std": [Double](repeating: 1, count: S), "scale": 1, "env": "hopper",
        ]
        edit(&fields)
        return try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    }

    /// A Hub folder (config.json, model.safetensors) for fixture `name` in `scratch`, its
    /// tensors edited by `tensors`, and the description's path.
    public static func hubFolder(
        _ name: String, in scratch: ScratchDirectory, config editConfig: (inout [String: Any]) -> Void = { _ in },
        description editDescription: (inout [String: Any]) -> Void = { _ in },
        tensors editTensors: (inout [String: SafetensorsTensor]) -> Void = { _ in }
    ) throws -> (folder: String, description: String) {
        let contents = try load(name)
        let folder = scratch.path("\(name)-hub-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try config(contents.metadata, edit: editConfig).write(to: URL(fileURLWithPath: folder + "/config.json"))
        var tensors = Dictionary(
            uniqueKeysWithValues: contents.tensors.filter { $0.key.hasPrefix("param/") }.map {
                (String($0.key.dropFirst("param/".count)), $0.value)
            })
        editTensors(&tensors)
        let raw = tensors.keys.sorted().map { key in
            let tensor = tensors[key]!
            return (name: key, dtype: tensor.dtype, shape: tensor.shape, bytes: [UInt8](tensor.bytes))
        }
        try Safetensors.serialize(raw: raw, metadata: ["format": "pt"]).write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
        let descriptionPath = folder + ".description.json"
        try description(contents.metadata, edit: editDescription).write(to: URL(fileURLWithPath: descriptionPath))
        return (folder, descriptionPath)
    }
}

