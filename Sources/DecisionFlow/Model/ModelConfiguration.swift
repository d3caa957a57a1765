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

    /// Problems that make the configuration unusable, as sentences; empty when it is valid.
    public var problems: [String] {
        var result: [String] = []
        for (name, value) in [
            ("stateDimension", stateDimension), ("actionDimension", actionDimension),
            ("contextLength", contextLength), ("embeddingDimension", embeddingDimension),
            ("layerCount", layerCount), ("headCount", headCount), ("mlpDimension", mlpDimension),
            ("maxEpisodeLength", maxEpisodeLength),
        ] where value < 1 {
            result.append("\(name) must be at least 1 (it is \(value))")
        }
        if headCount > 0, embeddingDimension % headCount != 0 {
            result.append("headCount \(headCount) must divide embeddingDimension \(embeddingDimension)")
        }
        if !(0..<1).contains(dropout) { result.append("dropout must be in [0, 1) (it is \(dropout))") }
        return result
    }
}
