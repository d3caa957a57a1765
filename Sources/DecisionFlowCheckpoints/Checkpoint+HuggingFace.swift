import DecisionFlow
import DecisionFlowSupport
import Foundation

/// The fields of a Hugging Face transformers `DecisionTransformerConfig` (a Hub folder's
/// `config.json`) that decide the model's shape. Every other field of the file is ignored.
public struct HuggingFaceDecisionTransformerConfig: Decodable, Sendable, Equatable {
    /// Width of a state (`state_dim`).
    public var stateDimension: Int
    /// Width of an action (`act_dim`).
    public var actionDimension: Int
    /// Width of every token's embedding (`hidden_size`).
    public var hiddenSize: Int
    /// Transformer blocks (`n_layer`).
    public var layerCount: Int
    /// Attention heads per block (`n_head`).
    public var headCount: Int
    /// The MLP's width (`n_inner`); nil (or null in the file) for 4 × `hiddenSize`.
    public var innerDimension: Int?
    /// The MLP's non-linearity (`activation_function`): `relu`, or `gelu_new` and its other
    /// name `gelu_pytorch_tanh`; nil for transformers' default, `relu`.
    public var activation: String?
    /// Rows of the timestep embedding (`max_ep_len`).
    public var maxEpisodeLength: Int
    /// Whether predicted actions go through tanh (`action_tanh`); nil for true.
    public var actionTanh: Bool?
    /// LayerNorm's epsilon (`layer_norm_epsilon`); nil for 1e-5.
    public var layerNormEpsilon: Double?
    /// The dropout rate (`resid_pdrop`); nil for 0.1. It matters only to further training.
    public var dropout: Double?

    /// A configuration problem in config.json's words (`stateDimension` → `state_dim`).
    static func inFileTerms(_ problem: String) -> String {
        let names = [
            ("stateDimension", "state_dim"), ("actionDimension", "act_dim"), ("embeddingDimension", "hidden_size"),
            ("layerCount", "n_layer"), ("headCount", "n_head"), ("mlpDimension", "n_inner"),
            ("maxEpisodeLength", "max_ep_len"), ("contextLength", "max_length"),
        ]
        return names.reduce(problem) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }

    enum CodingKeys: String, CodingKey {
        case stateDimension = "state_dim", actionDimension = "act_dim", hiddenSize = "hidden_size"
        case layerCount = "n_layer", headCount = "n_head", innerDimension = "n_inner"
        case activation = "activation_function", maxEpisodeLength = "max_ep_len", actionTanh = "action_tanh"
        case layerNormEpsilon = "layer_norm_epsilon", dropout = "resid_pdrop"
    }

    /// The model these fields describe, with context length `contextLength` (which
    /// `config.json` does not hold) and GPT-2's softmax attention.
    ///
    /// - Throws: `CheckpointError` naming `file` for an activation DecisionFlow does not
    ///   have, a non-finite epsilon or dropout, or sizes out of bounds.
    public func modelConfiguration(contextLength: Int, file: String) throws -> ModelConfiguration {
        let name = activation ?? "relu"
        let activation: Activation
        switch name {
        case "relu": activation = .relu
        case "gelu_new", "gelu_pytorch_tanh": activation = .gelu
        default:
            throw CheckpointError(
                file: file,
                problem:
                    "activation_function '\(name)' is not one DecisionFlow has: relu, or gelu_new (= gelu_pytorch_tanh); exact-erf gelu and the others are not implemented"
            )
        }
        // transformers builds embed_ln with LayerNorm's default 1e-5 and the GPT-2 blocks with
        // layer_norm_epsilon; DecisionFlow has one epsilon for every LayerNorm.
        let epsilon = layerNormEpsilon ?? 1e-5
        guard epsilon == 1e-5 else {
            throw CheckpointError(
                file: file,
                problem:
                    "layer_norm_epsilon is \(epsilon), but transformers' embed_ln always uses 1e-5 and DecisionFlow has one epsilon for every LayerNorm; only models with layer_norm_epsilon 1e-5 (transformers' default) import"
            )
        }
        let dropout = dropout ?? 0.1
        guard dropout.isFinite, (0..<1).contains(dropout) else {
            throw CheckpointError(file: file, problem: "resid_pdrop \(dropout) must be in [0, 1)")
        }
        let configuration = ModelConfiguration(
            stateDimension: stateDimension, actionDimension: actionDimension, contextLength: contextLength,
            embeddingDimension: hiddenSize, layerCount: layerCount, headCount: headCount, mlpDimension: innerDimension,
            activation: activation, dropout: Float(dropout), maxEpisodeLength: maxEpisodeLength, attention: .softmax,
            actionTanh: actionTanh ?? true, layerNormEpsilon: Float(epsilon))
        if let problem = configuration.problems.first {
            throw CheckpointError(file: file, problem: Self.inFileTerms(problem))
        }
        if let problem = configuration.memoryProblem(batchCapacity: 1, threads: 1) {
            throw CheckpointError(file: file, problem: problem)
        }
        return configuration
    }
}

/// What a Hugging Face import takes from the description JSON besides `config.json`: the
/// context length, the state statistics, the return scale and the environment, in the same
/// terms as `ImportedModelDescription`. Shape fields it also holds must agree with
/// `config.json`.
struct HuggingFaceDescription: Decodable, KeyCheckedJSON {
    var contextLength: Int
    var stateMean: [Float]
    var stateScale: [Float]
    var rewardScale: Float?
    var environment: String?
    var stateDimension: Int?
    var actionDimension: Int?
    var embeddingDimension: Int?
    var layerCount: Int?
    var headCount: Int?
    var mlpDimension: Int?
    var maxEpisodeLength: Int?
    var activation: String?
    var attention: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case contextLength = "max_length", stateMean = "state_mean", stateScale = "state_std", rewardScale = "scale"
        case environment = "env", stateDimension = "state_dim", actionDimension = "act_dim"
        case embeddingDimension = "hidden_size", layerCount = "n_layer", headCount = "n_head", mlpDimension = "n_inner"
        case maxEpisodeLength = "max_ep_len", activation = "activation_function", attention
    }

    /// The fields that disagree with `config`, as "name description against config.json".
    func disagreements(with config: HuggingFaceDecisionTransformerConfig) -> [String] {
        var found: [String] = []
        func check<T: Equatable>(_ name: String, _ mine: T?, _ theirs: T?) {
            if let mine, mine != theirs { found.append("\(name) \(mine) against \(theirs.map { "\($0)" } ?? "none")") }
        }
        check("state_dim", stateDimension, config.stateDimension)
        check("act_dim", actionDimension, config.actionDimension)
        check("hidden_size", embeddingDimension, config.hiddenSize)
        check("n_layer", layerCount, config.layerCount)
        check("n_head", headCount, config.headCount)
        check("n_inner", mlpDimension, config.innerDimension ?? 4 * config.hiddenSize)
        check("max_ep_len", maxEpisodeLength, config.maxEpisodeLength)
        check("activation_function", activation, config.activation ?? "relu")
        check("attention", attention, "softmax")
        return found
    }
}

extension Checkpoint {
    /// The notes an import from Hugging Face records in the checkpoint's metadata.
    static let huggingFaceNotes =
        "transformers' DecisionTransformerModel adds row 0 of encoder.wpe to every token after embed_ln (it calls GPT-2 with position ids all zero); that row is folded into embed_ln's bias. encoder.wte is unused, as the reference's transformer.wte is."

    /// A checkpoint from a Hugging Face transformers `DecisionTransformerModel` saved in the
    /// Hub's layout: `folder/config.json` and `folder/model.safetensors`, with the state
    /// statistics, return scale, context length (`max_length`) and environment from
    /// `description` (the JSON `importing(stateDictionary:description:prefix:)` reads; its
    /// shape fields may be left out, and must agree with `config.json` when present).
    ///
    /// The model is GPT-2 with causal softmax attention, as the reference Decision
    /// Transformer, under transformers' names (`encoder.h.N.*`, `encoder.ln_f`, `embed_*`,
    /// `predict_*`). transformers adds row 0 of `encoder.wpe` to every token after `embed_ln`;
    /// that row is folded into `embed_ln`'s bias (the checkpoint's metadata says so).
    /// `encoder.wte` is unused, as the reference's `transformer.wte` is.
    ///
    /// - Throws: `CheckpointError` naming the file and what is wrong: a missing or unreadable
    ///   file, a field of the wrong type, sizes out of bounds, an unknown activation, a
    ///   description that disagrees with `config.json`, statistics of the wrong width, and
    ///   tensors missing, extra, non-finite or of the wrong shape. Nothing is written.
    public static func importing(huggingFace folder: String, description descriptionPath: String) throws -> Checkpoint {
        let configPath = URL(fileURLWithPath: folder).appendingPathComponent("config.json").path
        let weightsPath = URL(fileURLWithPath: folder).appendingPathComponent("model.safetensors").path
        let config = try decodeJSON(HuggingFaceDecisionTransformerConfig.self, from: configPath)
        let description = try decodeJSON(HuggingFaceDescription.self, from: descriptionPath)
        let longest = ModelConfiguration.limits.first { $0.name == "contextLength" }?.limit ?? 1
        guard (1...longest).contains(description.contextLength) else {
            throw CheckpointError(
                file: descriptionPath,
                problem: "max_length (K) is \(description.contextLength); it must be from 1 to \(longest)")
        }
        if let disagreement = description.disagreements(with: config).first {
            throw CheckpointError(
                file: descriptionPath,
                problem: "disagrees with \(configPath): \(disagreement); leave the shape to config.json or correct it")
        }
        let configuration = try config.modelConfiguration(contextLength: description.contextLength, file: configPath)
        try requireStatistics(
            mean: description.stateMean, scale: description.stateScale, width: config.stateDimension,
            widthSource: "state_dim in config.json", file: descriptionPath)
        let encoding = ContextEncoding(
            stateMean: description.stateMean, stateScale: description.stateScale,
            rewardScale: description.rewardScale ?? 1000, for: configuration)
        if let problem = encoding.problem(for: configuration) {
            throw CheckpointError(file: descriptionPath, problem: problem)
        }
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            let bin = URL(fileURLWithPath: folder).appendingPathComponent("pytorch_model.bin").path
            let hint =
                FileManager.default.fileExists(atPath: bin)
                ? "; the folder has pytorch_model.bin (a pickle, which DecisionFlow does not read): save it as safetensors with transformers' save_pretrained(safe_serialization=True)"
                : ""
            throw CheckpointError(file: weightsPath, problem: "does not exist\(hint)")
        }
        let tensors: [String: SafetensorsTensor]
        do {
            tensors = try Safetensors.read(weightsPath).tensors
        } catch let error as SafetensorsError {
            throw CheckpointError(file: weightsPath, problem: error.problem)
        }
        let renamed = try referenceStateDictionary(
            fromHuggingFace: tensors, embeddingDimension: configuration.embeddingDimension, source: weightsPath)
        let model = DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 0, threads: 1)
        do {
            try model.load(stateDictionary: renamed, source: weightsPath)
        } catch let error as CheckpointError {
            // In the file's own names: transformer.* was encoder.* there.
            throw CheckpointError(
                file: error.file, problem: error.problem.replacingOccurrences(of: "'transformer.", with: "'encoder."))
        }
        return Checkpoint(
            model: model, encoding: encoding, environment: description.environment,
            metadata: [
                "imported_from": "\(URL(fileURLWithPath: folder).lastPathComponent)/model.safetensors (Hugging Face)",
                "import_notes": huggingFaceNotes,
            ])
    }

    /// transformers' tensors under the reference's names: `encoder.` becomes `transformer.`,
    /// row 0 of `encoder.wpe` is added to `embed_ln.bias`, and `encoder.wpe` leaves (the
    /// unused `encoder.wte` becomes the reference's unused `transformer.wte`). The rest
    /// (missing, extra or misshapen tensors) is `load(stateDictionary:)`'s to check.
    static func referenceStateDictionary(
        fromHuggingFace tensors: [String: SafetensorsTensor], embeddingDimension C: Int, source: String
    ) throws -> [String: SafetensorsTensor] {
        func tensor(_ name: String, rows: ClosedRange<Int>?) throws -> SafetensorsTensor {
            guard let found = tensors[name] else {
                throw CheckpointError(
                    file: source, problem: "tensor '\(name)' is missing; this is not a transformers DecisionTransformerModel")
            }
            let shapeFits =
                rows.map { found.shape.count == 2 && $0.contains(found.shape[0]) && found.shape[1] == C }
                ?? (found.shape == [C])
            guard shapeFits else {
                throw CheckpointError(
                    file: source,
                    problem:
                        "tensor '\(name)' has shape \(found.shape); this model (hidden_size \(C)) needs \(rows == nil ? "[\(C)]" : "[n, \(C)] with n ≥ 1")"
                )
            }
            return found
        }
        // Bounded like the model's own sizes, so a forged shape cannot ask for a huge decode.
        let positionRows = try tensor("encoder.wpe.weight", rows: 1...(1 << 20))
        let bias = try tensor("embed_ln.bias", rows: nil)
        // Row 0 only: only it is ever added (position ids are all zero).
        let row = positionRows.bytes.prefix(C * positionRows.dtype.byteWidth)
        let position = SafetensorsTensor(dtype: positionRows.dtype, shape: [C], bytes: Data(row)).values
        try SafetensorsTensor(shape: [C], values: position).requireFinite(name: "encoder.wpe.weight (row 0)", file: source)
        var renamed: [String: SafetensorsTensor] = [:]
        // encoder.wte stays: the reference keeps GPT-2's unused token embedding as
        // transformer.wte, and so does the layout.
        for (name, value) in tensors where name != "encoder.wpe.weight" {
            let reference = name.hasPrefix("encoder.") ? "transformer." + name.dropFirst("encoder.".count) : name
            guard renamed[reference] == nil else {
                throw CheckpointError(file: source, problem: "tensors '\(name)' and '\(reference)' would both be '\(reference)'")
            }
            renamed[reference] = value
        }
        renamed["embed_ln.bias"] = SafetensorsTensor(shape: [C], values: zip(bias.values, position).map { $0 + $1 })
        return renamed
    }

    /// `type` decoded from the JSON file at `path`, with errors that name the file and field;
    /// for a `KeyCheckedJSON` type, a field it does not know (a misspelt `scale`) is an error
    /// too, with the nearest known one.
    static func decodeJSON<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CheckpointError(file: path, problem: "cannot be read (\(FileProblem.reason(error)))")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CheckpointError(file: path, problem: "is not a JSON object ({\"field\": value, ...})")
        }
        if let checked = type as? any KeyCheckedJSON.Type,
            let unknown = object.keys.sorted().first(where: { !checked.knownKeys.contains($0) })
        {
            let hint = Suggestions.nearest(to: unknown, among: checked.knownKeys.sorted()).map { " (did you mean '\($0)'?)" } ?? ""
            throw CheckpointError(file: path, problem: "has an unknown field '\(unknown)'\(hint)")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw CheckpointError(file: path, problem: "lacks the field '\(key.stringValue)'")
        } catch let DecodingError.valueNotFound(_, context) {
            throw CheckpointError(
                file: path, problem: "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' is null")
        } catch let DecodingError.typeMismatch(_, context) {
            throw CheckpointError(
                file: path,
                problem: "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw CheckpointError(
                file: path,
                problem:
                    "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' cannot be read: \(context.debugDescription)"
            )
        } catch DecodingError.dataCorrupted(let context) {
            throw CheckpointError(file: path, problem: "holds a value that cannot be read: \(context.debugDescription)")
        } catch {
            throw CheckpointError(file: path, problem: "is not valid JSON (\(FileProblem.reason(error)))")
        }
    }
}

/// A JSON description whose every field is known: `Checkpoint.decodeJSON` refuses others.
protocol KeyCheckedJSON {
    /// The fields it may hold.
    static var knownKeys: Set<String> { get }
}

extension HuggingFaceDescription {
    static var knownKeys: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }
}
