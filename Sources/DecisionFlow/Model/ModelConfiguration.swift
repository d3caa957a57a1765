import DecisionFlowSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The attention used by every transformer block.
public enum AttentionKind: String, Codable, Sendable, CaseIterable {
    /// Causal Flow-Attention (Flowformer, Wu et al. 2022): linear in sequence length.
    case flow
    /// GPT-2's causal softmax attention: the plain Decision Transformer.
    case softmax
}

/// The MLP's non-linearity.
public enum Activation: String, Codable, Sendable, CaseIterable {
    /// max(0, x): what the Decision Transformer experiments use.
    case relu
    /// GPT-2's `gelu_new`: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    case gelu
}

/// The hyperparameters of a Decision Transformer: everything about its shape but the widths
/// of the data it acts on. The defaults are the Decision Transformer's (FACTS.md), held here
/// once: `ModelConfiguration`'s initializer and a training configuration's model both start
/// from `ModelHyperparameters()`.
public struct ModelHyperparameters: Codable, Sendable, Equatable {
    /// Context length in timesteps (K); the model sees L = 3K tokens.
    public var contextLength = 20
    /// Embedding width (C).
    public var embeddingDimension = 128
    /// Transformer blocks.
    public var layerCount = 3
    /// Attention heads; must divide the embedding width.
    public var headCount = 1
    /// MLP hidden width (the reference's `n_inner`); nil for 4 × the embedding width, which
    /// then follows that width.
    public var mlpDimension: Int? = nil
    /// The MLP's non-linearity.
    public var activation = Activation.relu
    /// Dropout probability (embeddings, attention output, MLP output) during training.
    public var dropout: Float = 0.1
    /// Timestep embedding rows; timesteps must be below this.
    public var maxEpisodeLength = 1000
    /// Flow or softmax attention.
    public var attention = AttentionKind.flow
    /// Whether predicted actions go through tanh (the reference does).
    public var actionTanh = true
    /// LayerNorm epsilon (GPT-2's `layer_norm_epsilon`).
    public var layerNormEpsilon: Float = 1e-5
    /// Flow-Attention's epsilon.
    public var flowEpsilon: Float = 1e-6

    /// The Decision Transformer's hyperparameters.
    public init() {}
}

/// The shape of a Decision Transformer: its hyperparameters and the state and action widths.
/// Field names follow the reference's arguments; every hyperparameter reads and writes as a
/// property of the configuration (`configuration.embeddingDimension`).
@dynamicMemberLookup
public struct ModelConfiguration: Sendable, Equatable {
    /// Observation width (S).
    public var stateDimension: Int
    /// Action width (A).
    public var actionDimension: Int
    /// Everything else about the shape. Its MLP width is always set here.
    public private(set) var hyperparameters: ModelHyperparameters

    /// MLP hidden width (the reference's `n_inner`), normally 4 × embedding width.
    public var mlpDimension: Int {
        get { hyperparameters.mlpDimension ?? 4 * hyperparameters.embeddingDimension }
        set { hyperparameters.mlpDimension = newValue }
    }

    /// A hyperparameter, as a property of the configuration.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<ModelHyperparameters, Value>) -> Value {
        get { hyperparameters[keyPath: keyPath] }
        set {
            // The MLP width is fixed once the configuration exists: a new embedding width
            // leaves it as it was.
            let width = mlpDimension
            hyperparameters[keyPath: keyPath] = newValue
            if hyperparameters.mlpDimension == nil { hyperparameters.mlpDimension = width }
        }
    }

    /// A configuration for data of `stateDimension` and `actionDimension`, with
    /// `hyperparameters` (an unset MLP width becomes 4 × the embedding width).
    public init(_ hyperparameters: ModelHyperparameters, stateDimension: Int, actionDimension: Int) {
        self.stateDimension = stateDimension
        self.actionDimension = actionDimension
        self.hyperparameters = hyperparameters
        self.hyperparameters.mlpDimension = hyperparameters.mlpDimension ?? 4 * hyperparameters.embeddingDimension
    }

    /// Creates a configuration; an argument left out takes `ModelHyperparameters()`'s value
    /// (an MLP width left out, 4 × the embedding width).
    public init(
        stateDimension: Int, actionDimension: Int, contextLength: Int = ModelConfiguration.defaults.contextLength,
        embeddingDimension: Int = ModelConfiguration.defaults.embeddingDimension, layerCount: Int = ModelConfiguration.defaults.layerCount,
        headCount: Int = ModelConfiguration.defaults.headCount, mlpDimension: Int? = nil, activation: Activation = ModelConfiguration.defaults.activation,
        dropout: Float = ModelConfiguration.defaults.dropout, maxEpisodeLength: Int = ModelConfiguration.defaults.maxEpisodeLength,
        attention: AttentionKind = ModelConfiguration.defaults.attention, actionTanh: Bool = ModelConfiguration.defaults.actionTanh,
        layerNormEpsilon: Float = ModelConfiguration.defaults.layerNormEpsilon, flowEpsilon: Float = ModelConfiguration.defaults.flowEpsilon
    ) {
        var h = ModelHyperparameters()
        h.contextLength = contextLength
        h.embeddingDimension = embeddingDimension
        h.layerCount = layerCount
        h.headCount = headCount
        h.mlpDimension = mlpDimension
        h.activation = activation
        h.dropout = dropout
        h.maxEpisodeLength = maxEpisodeLength
        h.attention = attention
        h.actionTanh = actionTanh
        h.layerNormEpsilon = layerNormEpsilon
        h.flowEpsilon = flowEpsilon
        self.init(h, stateDimension: stateDimension, actionDimension: actionDimension)
    }

    /// The default hyperparameters, for the initializer's default arguments.
    public static let defaults = ModelHyperparameters()

    /// The dimension letters the passes name their sizes by: C channels, S state width,
    /// A action width, F MLP width, H heads, D head width.
    var letters: (C: Int, S: Int, A: Int, F: Int, H: Int, D: Int) {
        (self.embeddingDimension, stateDimension, actionDimension, mlpDimension, self.headCount, headDimension)
    }

    /// Head width (D = C / H).
    public var headDimension: Int { self.embeddingDimension / self.headCount }

    /// Tokens per sequence (L = 3K).
    public var tokenCount: Int { 3 * self.contextLength }

    /// The largest value each size may take. Far beyond any model trained on a CPU, and small
    /// enough that the sizes computed from them fit in an `Int`: a configuration read from a
    /// file is checked against them before anything is allocated.
    public static var limits: [(name: String, keyPath: KeyPath<ModelConfiguration, Int>, limit: Int)] {[
        ("stateDimension", \.stateDimension, 65_536), ("actionDimension", \.actionDimension, 65_536),
        ("contextLength", \.contextLength, 10_000_000), ("embeddingDimension", \.embeddingDimension, 65_536),
        ("layerCount", \.layerCount, 1_024), ("headCount", \.headCount, 65_536),
        ("mlpDimension", \.mlpDimension, 262_144), ("maxEpisodeLength", \.maxEpisodeLength, 10_000_000),
    ]}

    /// Problems that make the configuration unusable, as sentences; empty when it is valid.
    public var problems: [String] {
        var result: [String] = []
        for (name, keyPath, limit) in Self.limits {
            let value = self[keyPath: keyPath]
            if value < 1 { result.append("\(name) must be at least 1 (it is \(value))") }
            if value > limit { result.append("\(name) must be at most \(limit) (it is \(value))") }
        }
        if self.headCount > 0, self.embeddingDimension % self.headCount != 0 {
            result.append("headCount \(self.headCount) must divide embeddingDimension \(self.embeddingDimension)")
        }
        if !(0..<1).contains(self.dropout) { result.append("dropout must be in [0, 1) (it is \(self.dropout))") }
        for (name, value) in [("layerNormEpsilon", self.layerNormEpsilon), ("flowEpsilon", self.flowEpsilon)]
        where !(value.isFinite && value > 0) {
            result.append("\(name) must be a positive number (it is \(value))")
        }
        return result
    }

    /// About how many bytes a model of this shape needs for `batchCapacity` sequences: weights
    /// and gradients, every activation buffer, attention caches and scratch (and, with
    /// `training`, AdamW's two moments). Computed with overflow-checked arithmetic; nil when it
    /// does not fit in an `Int` or the configuration is invalid.
    public func estimatedBytes(batchCapacity: Int, threads: Int = 2, training: Bool = false) -> Int? {
        guard problems.isEmpty, batchCapacity >= 1, threads >= 1 else { return nil }
        let size = CheckedSize.self
        let (C, S, A, F, H, D) = letters
        let L = tokenCount
        let layers = self.layerCount
        guard let N = size.product(batchCapacity, L) else { return nil }
        let chunk = self.attention == .flow ? FlowChunking.defaultLength(tokens: L) : L
        let cache =
            self.attention == .flow
            ? size.product(batchCapacity, H, size.sum(size.product(L, FlowCache.width), size.product(L / chunk + 1, D, D)))
            : size.product(batchCapacity, H, L, L, 2)
        let perLayer = size.sum(size.product(N, C, 10), size.product(N, F, 2), cache)
        let whole = size.sum(
            size.product(N, C, 14), size.product(N, F, 2), size.product(layers, perLayer),
            size.product(batchCapacity, self.contextLength, size.sum(S, 2 * A, 1)))
        let scratch =
            self.attention == .flow
            ? size.product(threads, size.sum(size.product(chunk, chunk, 4), size.product(L, D, 8), size.product(D, D, 4)))
            : size.product(threads, 3, L, L)
        let parameters = ParameterLayout(configuration: self).count  // safe within the limits
        return size.product(4, size.sum(size.product(parameters, training ? 4 : 2), whole, scratch))
    }

    /// Bytes a `DecisionPolicy` of this shape takes for `agents` agents: the weights, one
    /// pass's scratch (at most `ActingWorkspace.targetRows` token rows, however many agents),
    /// and what every agent carries (its history, and its Flow-Attention state or softmax
    /// key-value cache): an estimate of what it allocates, not counting thread stacks or the
    /// allocator's own overhead; nil when it overflows.
    public func actingBytes(agents: Int, threads: Int = 1) -> Int? {
        guard problems.isEmpty, agents >= 1, threads >= 1 else { return nil }
        let size = CheckedSize.self
        let (C, S, A, F, H, D) = letters
        let L = tokenCount
        let K = self.contextLength
        let flow = self.attention == .flow
        let chunk = flow ? FlowChunking.defaultLength(tokens: L) : L
        let rows = max(L, 4, min(size.product(agents, L) ?? Int.max, ActingWorkspace.targetRows))
        let flowCache = flow ? size.product(H, size.sum(size.product(rows, 6), size.product(rows / chunk + 1, D, D))) : 0
        let appendCapacity = min(agents, rows / 4)
        // Per worker, as FlowAttentionScratch holds it: nine (L, D) buffers, two c×c, and the
        // per-position and state sums; softmax: an (L, L) probability buffer.
        let flowScratch = size.sum(
            size.product(9, L, D), size.product(2, chunk, chunk), size.product(4, L), 8 * D + 2, size.product(2, D, D))
        let scratch = size.sum(
            size.product(rows, size.sum(8 * C, 2 * F, 2)), flowCache, size.product(rows, A),
            size.product(min(agents, rows / 3 + 1), K, S + A + 3), size.product(appendCapacity, 2, S + A + 3),
            flow ? size.product(threads, flowScratch) : size.product(threads, L, L))
        let carried = flow ? size.product(self.layerCount, H, D * D + 4 * D + 2) : size.product(self.layerCount, L, 3 * C)
        let perAgent = size.sum(carried, size.product(K, S + A + 1), 8)
        let parameters = ParameterLayout(configuration: self).count
        return size.product(4, size.sum(parameters, scratch, size.product(agents, perAgent)))
    }

    /// Why a `DecisionPolicy` of this shape cannot act for `agents` agents on this machine,
    /// if it cannot: more memory than it has (`actingBytes(agents:threads:)`).
    public func actingMemoryProblem(agents: Int, threads: Int = 1) -> String? {
        let available = physicalMemoryBytes
        guard let bytes = actingBytes(agents: agents, threads: threads) else {
            return "a policy of \(summary) for \(agents) agents would need more memory than can be counted"
        }
        guard bytes <= available else {
            return
                "a policy of \(summary) for \(agents) agents needs about \(bytes >> 20) MiB, more than this machine's \(available >> 20) MiB; act for fewer agents or use a smaller model or context"
        }
        return nil
    }

    /// Why a model of this shape cannot be built for `batchCapacity` sequences on this
    /// machine, if it cannot: more memory than it has.
    public func memoryProblem(batchCapacity: Int, threads: Int = 2, training: Bool = false) -> String? {
        let available = physicalMemoryBytes
        guard let bytes = estimatedBytes(batchCapacity: batchCapacity, threads: threads, training: training) else {
            return "a model of \(summary) for \(batchCapacity) sequences would need more memory than can be counted"
        }
        guard bytes <= available else {
            return
                "a model of \(summary) for \(batchCapacity) sequences needs about \(bytes >> 20) MiB, more than this machine's \(available >> 20) MiB; use a smaller model, context or batch"
        }
        return nil
    }
}

extension ModelConfiguration: Codable {
    // One flat JSON object (checkpoint headers hold it): the hyperparameters' own keys, the
    // MLP width always among them, beside the two widths.
    private enum CodingKeys: String, CodingKey {
        case stateDimension, actionDimension
    }

    /// Decodes the flat object `encode(to:)` writes; every field is required.
    public init(from decoder: any Decoder) throws {
        let hyperparameters = try ModelHyperparameters(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard hyperparameters.mlpDimension != nil else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: decoder.codingPath, debugDescription: "mlpDimension is missing: a model configuration states its MLP width"))
        }
        self.init(
            hyperparameters, stateDimension: try c.decode(Int.self, forKey: .stateDimension),
            actionDimension: try c.decode(Int.self, forKey: .actionDimension))
    }

    /// Encodes every field as one flat object.
    public func encode(to encoder: any Encoder) throws {
        try hyperparameters.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stateDimension, forKey: .stateDimension)
        try c.encode(actionDimension, forKey: .actionDimension)
    }
}

extension ModelConfiguration {
    /// A one-line description for messages: `flow, S 11, A 3, C 128, 3 layers, 1 head, K 20`.
    public var summary: String {
        "\(self.attention.rawValue) attention, S \(stateDimension), A \(actionDimension), C \(self.embeddingDimension), \(self.layerCount) layer\(self.layerCount == 1 ? "" : "s"), \(self.headCount) head\(self.headCount == 1 ? "" : "s"), MLP \(mlpDimension), K \(self.contextLength), max episode length \(self.maxEpisodeLength)"
    }
}
