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

/// The shape of a Decision Transformer. Field names follow the reference's arguments.
public struct ModelConfiguration: Codable, Sendable, Equatable {
    /// Observation width (S).
    public var stateDimension: Int
    /// Action width (A).
    public var actionDimension: Int
    /// Context length in timesteps (K); the model sees L = 3K tokens.
    public var contextLength: Int
    /// Embedding width (C).
    public var embeddingDimension: Int
    /// Transformer blocks.
    public var layerCount: Int
    /// Attention heads; must divide the embedding width.
    public var headCount: Int
    /// MLP hidden width (the reference's `n_inner`), normally 4 × embedding width.
    public var mlpDimension: Int
    /// The MLP's non-linearity.
    public var activation: Activation
    /// Dropout probability (embeddings, attention output, MLP output) during training.
    public var dropout: Float
    /// Timestep embedding rows; timesteps must be below this.
    public var maxEpisodeLength: Int
    /// Flow or softmax attention.
    public var attention: AttentionKind
    /// Whether predicted actions go through tanh (the reference does).
    public var actionTanh: Bool
    /// LayerNorm epsilon (GPT-2's `layer_norm_epsilon`).
    public var layerNormEpsilon: Float
    /// Flow-Attention's epsilon.
    public var flowEpsilon: Float

    /// Creates a configuration; defaults are the Decision Transformer's (FACTS.md).
    public init(
        stateDimension: Int, actionDimension: Int, contextLength: Int = 20, embeddingDimension: Int = 128,
        layerCount: Int = 3, headCount: Int = 1, mlpDimension: Int? = nil, activation: Activation = .relu,
        dropout: Float = 0.1, maxEpisodeLength: Int = 1000, attention: AttentionKind = .flow,
        actionTanh: Bool = true, layerNormEpsilon: Float = 1e-5, flowEpsilon: Float = 1e-6
    ) {
        self.stateDimension = stateDimension
        self.actionDimension = actionDimension
        self.contextLength = contextLength
        self.embeddingDimension = embeddingDimension
        self.layerCount = layerCount
        self.headCount = headCount
        self.mlpDimension = mlpDimension ?? 4 * embeddingDimension
        self.activation = activation
        self.dropout = dropout
        self.maxEpisodeLength = maxEpisodeLength
        self.attention = attention
        self.actionTanh = actionTanh
        self.layerNormEpsilon = layerNormEpsilon
        self.flowEpsilon = flowEpsilon
    }

    /// The dimension letters the passes name their sizes by: C channels, S state width,
    /// A action width, F MLP width, H heads, D head width.
    var letters: (C: Int, S: Int, A: Int, F: Int, H: Int, D: Int) {
        (embeddingDimension, stateDimension, actionDimension, mlpDimension, headCount, headDimension)
    }

    /// Head width (D = C / H).
    public var headDimension: Int { embeddingDimension / headCount }

    /// Tokens per sequence (L = 3K).
    public var tokenCount: Int { 3 * contextLength }

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
        if headCount > 0, embeddingDimension % headCount != 0 {
            result.append("headCount \(headCount) must divide embeddingDimension \(embeddingDimension)")
        }
        if !(0..<1).contains(dropout) { result.append("dropout must be in [0, 1) (it is \(dropout))") }
        for (name, value) in [("layerNormEpsilon", layerNormEpsilon), ("flowEpsilon", flowEpsilon)]
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
        let layers = layerCount
        guard let N = size.product(batchCapacity, L) else { return nil }
        let chunk = attention == .flow ? FlowChunking.defaultLength(tokens: L) : L
        let cache =
            attention == .flow
            ? size.product(batchCapacity, H, size.sum(size.product(L, FlowCache.width), size.product(L / chunk + 1, D, D)))
            : size.product(batchCapacity, H, L, L, 2)
        let perLayer = size.sum(size.product(N, C, 10), size.product(N, F, 2), cache)
        let whole = size.sum(
            size.product(N, C, 14), size.product(N, F, 2), size.product(layers, perLayer),
            size.product(batchCapacity, contextLength, size.sum(S, 2 * A, 1)))
        let scratch =
            attention == .flow
            ? size.product(threads, size.sum(size.product(chunk, chunk, 4), size.product(L, D, 8), size.product(D, D, 4)))
            : size.product(threads, 3, L, L)
        let parameters = ParameterLayout(configuration: self).count  // safe within the limits
        return size.product(4, size.sum(size.product(parameters, training ? 4 : 2), whole, scratch))
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

/// Physical memory, from `sysconf`.
var physicalMemoryBytes: Int {
    let pages = sysconf(Int32(_SC_PHYS_PAGES))
    let pageSize = sysconf(Int32(_SC_PAGESIZE))
    return pages > 0 && pageSize > 0 ? pages.multipliedReportingOverflow(by: pageSize).partialValue : Int.max
}

/// Sizes multiplied and added with overflow checks: nil as soon as a step overflows, and nil in,
/// nil out.
enum CheckedSize {
    static func product(_ factors: Int?...) -> Int? { product(of: factors) }

    static func product(of factors: [Int?]) -> Int? {
        var result = 1
        for factor in factors {
            guard let factor, factor >= 0 else { return nil }
            let (value, overflow) = result.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            result = value
        }
        return result
    }

    static func sum(_ terms: Int?...) -> Int? {
        var result = 0
        for term in terms {
            guard let term, term >= 0 else { return nil }
            let (value, overflow) = result.addingReportingOverflow(term)
            if overflow { return nil }
            result = value
        }
        return result
    }
}
