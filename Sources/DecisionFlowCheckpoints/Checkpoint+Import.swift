import DecisionFlow
import DecisionFlowSupport
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
/// (default 4 × hidden_size), `activation_function` (relu), `attention` (flow), `scale` (1000),
/// `resid_pdrop` (the dropout rate, 0.1) and `env` may be left out. `d4rl-run export` writes
/// this JSON for a checkpoint.
public struct ImportedModelDescription: Codable, Sendable, Equatable {
    /// Width of a state (`state_dim`).
    public var stateDimension: Int
    /// Width of an action (`act_dim`).
    public var actionDimension: Int
    /// Width of every token's embedding (`hidden_size`).
    public var embeddingDimension: Int
    /// Transformer blocks (`n_layer`).
    public var layerCount: Int
    /// Attention heads per block (`n_head`).
    public var headCount: Int
    /// nil: 4 × embeddingDimension.
    public var mlpDimension: Int?
    /// Timesteps per window, K (`max_length`).
    public var contextLength: Int
    /// Rows of the timestep embedding (`max_ep_len`).
    public var maxEpisodeLength: Int
    /// `relu` or `gelu_new` (the reference's name for GELU); nil: relu.
    public var activation: String?
    /// `flow` or `softmax`; nil: flow.
    public var attention: String?
    /// nil: 1000.
    public var rewardScale: Float?
    /// The environment the policy acts in (`env`), if known.
    public var environment: String?
    /// The training data's state mean (`state_mean`).
    public var stateMean: [Float]
    /// The reference's divisor: its dataset's std + 1e-6.
    public var stateScale: [Float]
    /// The dropout rate (the reference's resid_pdrop, attn_pdrop and embd_pdrop); nil: 0.1.
    public var dropout: Float?
    /// GPT-2's context size (`n_positions`), which sizes a softmax model's causal-mask buffers;
    /// written by export for the Python side, not needed by import.
    public var positionCount: Int?

    /// The description of `checkpoint`'s model and encoding, as `export` writes it.
    ///
    /// - Throws: `CheckpointError` when the checkpoint has no context encoding (a policy needs
    ///   its state statistics and return scale, and the reference model cannot do without them).
    public init(checkpoint: Checkpoint, file: String) throws {
        guard let encoding = checkpoint.encoding else {
            throw CheckpointError(
                file: file,
                problem:
                    "holds no state statistics or return scale (it was not written by training or import), so the reference model could not use it; export a checkpoint from `d4rl-run train`")
        }
        let c = checkpoint.configuration
        stateDimension = c.stateDimension
        actionDimension = c.actionDimension
        embeddingDimension = c.embeddingDimension
        layerCount = c.layerCount
        headCount = c.headCount
        mlpDimension = c.mlpDimension
        contextLength = c.contextLength
        maxEpisodeLength = c.maxEpisodeLength
        activation = c.activation == .gelu ? "gelu_new" : c.activation.rawValue
        attention = c.attention.rawValue
        rewardScale = encoding.rewardScale
        environment = checkpoint.environment
        stateMean = encoding.stateMean
        stateScale = encoding.stateScale
        dropout = c.dropout
        positionCount = Swift.max(Checkpoint.referencePositionCount, c.tokenCount)
    }

    /// The reference's names: the data's widths, the trunk, the encoding, GPT-2's extras.
    enum CodingKeys: String, CodingKey {
        case stateDimension = "state_dim", actionDimension = "act_dim", contextLength = "max_length"
        case embeddingDimension = "hidden_size", layerCount = "n_layer", headCount = "n_head", mlpDimension = "n_inner"
        case maxEpisodeLength = "max_ep_len", activation = "activation_function", attention
        case rewardScale = "scale", environment = "env", stateMean = "state_mean", stateScale = "state_std"
        case dropout = "resid_pdrop", positionCount = "n_positions"
    }

    /// The context encoding it describes for `model`: the reference's protocol with its
    /// statistics and scale.
    public func encoding(for model: ModelConfiguration) -> ContextEncoding {
        ContextEncoding(stateMean: stateMean, stateScale: stateScale, rewardScale: rewardScale ?? 1000, for: model)
    }
}

extension Checkpoint {
    /// Refuses state statistics that are not `width` values each, naming `file` and where the
    /// width came from.
    static func requireStatistics(mean: [Float], scale: [Float], width: Int, widthSource: String, file: String) throws {
        guard mean.count != width || scale.count != width else { return }
        throw CheckpointError(
            file: file,
            problem: "state_mean and state_std need \(width) values each (\(widthSource)); they have \(mean.count) and \(scale.count)")
    }

    /// A checkpoint from a reference PyTorch state dict saved as safetensors, and the JSON
    /// description of its model and state normalization.
    ///
    /// - Parameters:
    ///   - stateDictionaryPath: the state dict, as safetensors.
    ///   - descriptionPath: the JSON description (`ImportedModelDescription`).
    ///   - prefix: stripped from every tensor name first (e.g. `param/`).
    /// - Throws: `CheckpointError` naming the file and what is wrong: unreadable files, an
    ///   unknown attention or activation, statistics of the wrong width, or tensors that do not
    ///   match the described model.
    public static func importing(
        stateDictionary stateDictionaryPath: String, description descriptionPath: String, prefix: String = ""
    ) throws -> Checkpoint {
        let description = try decodeJSON(ImportedModelDescription.self, from: descriptionPath)
        guard let attention = AttentionKind(rawValue: description.attention ?? "flow") else {
            throw CheckpointError(
                file: descriptionPath, problem: "attention '\(description.attention ?? "")' is neither flow nor softmax"
            )
        }
        let activationName = description.activation ?? "relu"
        guard let activation = Activation(rawValue: activationName == "gelu_new" ? "gelu" : activationName) else {
            throw CheckpointError(
                file: descriptionPath, problem: "activation_function '\(activationName)' is neither relu nor gelu_new")
        }
        try requireStatistics(
            mean: description.stateMean, scale: description.stateScale, width: description.stateDimension,
            widthSource: "state_dim", file: descriptionPath)
        let configuration = ModelConfiguration(
            stateDimension: description.stateDimension, actionDimension: description.actionDimension,
            contextLength: description.contextLength, embeddingDimension: description.embeddingDimension,
            layerCount: description.layerCount, headCount: description.headCount,
            mlpDimension: description.mlpDimension, activation: activation,
            dropout: description.dropout ?? 0.1, maxEpisodeLength: description.maxEpisodeLength, attention: attention)
        if let problem = configuration.problems.first {
            throw CheckpointError(file: descriptionPath, problem: problem)
        }
        if let problem = configuration.memoryProblem(batchCapacity: 1, threads: 1) {
            throw CheckpointError(file: descriptionPath, problem: problem)
        }
        let encoding = description.encoding(for: configuration)
        if let problem = encoding.problem(for: configuration) {
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
        return Checkpoint(
            model: model, encoding: encoding, environment: description.environment,
            metadata: ["imported_from": URL(fileURLWithPath: stateDictionaryPath).lastPathComponent])
    }
}
