import Foundation

/// The JSON that accompanies a PyTorch state dict for `d4rl-run import`, in the reference
/// implementation's own terms.
///
/// ```json
/// {"state_dim": 11, "act_dim": 3, "hidden_size": 128, "n_layer": 3, "n_head": 1,
///  "n_inner": 512, "max_length": 20, "max_ep_len": 1000, "activation_function": "relu",
///  "attention": "flow", "scale": 1000, "env": "hopper",
///  "state_mean": [...], "state_std": [...]}
/// ```
/// `state_std` is the divisor the reference uses, its dataset's std + 1e-6. `n_inner`
/// (default 4 × hidden_size), `activation_function` (relu), `attention` (flow), `scale` (1000)
/// and `env` may be left out.
public struct ImportedModelDescription: Decodable, Sendable {
    public var state_dim: Int
    public var act_dim: Int
    public var hidden_size: Int
    public var n_layer: Int
    public var n_head: Int
    public var n_inner: Int?
    public var max_length: Int
    public var max_ep_len: Int
    public var activation_function: String?
    public var attention: String?
    public var scale: Float?
    public var env: String?
    public var state_mean: [Float]
    public var state_std: [Float]
}

extension Checkpoint {
    /// A checkpoint from a reference PyTorch state dict saved as safetensors, and the JSON
    /// description of its model and state normalization.
    ///
    /// - Parameter prefix: stripped from every tensor name first (e.g. `param/`).
    /// - Throws: `CheckpointError` naming the file and what is wrong: unreadable files, an
    ///   unknown attention or activation, statistics of the wrong width, or tensors that do not
    ///   match the described model.
    public static func importing(
        stateDictionary stateDictionaryPath: String, description descriptionPath: String, prefix: String = ""
    ) throws -> Checkpoint {
        let description: ImportedModelDescription
        do {
            description = try JSONDecoder().decode(
                ImportedModelDescription.self, from: Data(contentsOf: URL(fileURLWithPath: descriptionPath)))
        } catch let DecodingError.keyNotFound(key, _) {
            throw CheckpointError(file: descriptionPath, problem: "lacks the field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw CheckpointError(
                file: descriptionPath,
                problem: "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw CheckpointError(
                file: descriptionPath, problem: "cannot be read as a model description (\(error.localizedDescription))")
        }
        guard let attention = AttentionKind(rawValue: description.attention ?? "flow") else {
            throw CheckpointError(
                file: descriptionPath, problem: "attention '\(description.attention ?? "")' is neither flow nor softmax"
            )
        }
        let activationName = description.activation_function ?? "relu"
        guard let activation = Activation(rawValue: activationName == "gelu_new" ? "gelu" : activationName) else {
            throw CheckpointError(
                file: descriptionPath, problem: "activation_function '\(activationName)' is neither relu nor gelu_new")
        }
        guard description.state_mean.count == description.state_dim,
            description.state_std.count == description.state_dim
        else {
            throw CheckpointError(
                file: descriptionPath,
                problem:
                    "state_mean and state_std need \(description.state_dim) values each (state_dim); they have \(description.state_mean.count) and \(description.state_std.count)"
            )
        }
        let configuration = ModelConfiguration(
            stateDimension: description.state_dim, actionDimension: description.act_dim,
            contextLength: description.max_length,
            embeddingDimension: description.hidden_size, layerCount: description.n_layer, headCount: description.n_head,
            mlpDimension: description.n_inner, activation: activation, maxEpisodeLength: description.max_ep_len,
            attention: attention)
        if let problem = configuration.problems.first {
            throw CheckpointError(file: descriptionPath, problem: problem)
        }
        let tensors: [String: SafetensorsTensor]
        do {
            tensors = try Safetensors.read(stateDictionaryPath).tensors
        } catch let error as SafetensorsError {
            throw CheckpointError(file: stateDictionaryPath, problem: error.problem)
        }
        let model = DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 0, threads: 1)
        try model.load(
            stateDictionary: tensors.filter { $0.key.hasPrefix(prefix) }, prefix: prefix, source: stateDictionaryPath)
        let normalization = PolicyNormalization(
            stateMean: description.state_mean, stateScale: description.state_std,
            rewardScale: description.scale ?? 1000,
            environment: description.env)
        let json = try normalization.json()
        return Checkpoint(
            model: model,
            metadata: [
                PolicyNormalization.metadataKey: json,
                "imported_from": URL(fileURLWithPath: stateDictionaryPath).lastPathComponent,
            ])
    }
}
