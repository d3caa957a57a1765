/// Where every parameter tensor lives in the model's one flat parameter buffer, under the
/// reference implementation's state-dict names, so weights move between PyTorch and Swift
/// one to one.
///
/// The same layout indexes the gradient buffer and AdamW's two moment buffers: zeroing the
/// gradients is one fill, AdamW is one loop, a checkpoint is a loop over named slices.
public struct ParameterLayout: Sendable {
    /// One named tensor.
    public struct Entry: Sendable, Equatable {
        /// The reference's state-dict name, e.g. `transformer.h.0.ln_1.weight`.
        public var name: String
        /// The shape as the reference stores it (`nn.Linear` (out, in), `Conv1D` (in, out)).
        public var shape: [Int]
        /// The first element in the flat buffers.
        public var offset: Int
        /// Whether the action loss reaches this tensor. The reference leaves the others' grad
        /// at None, and PyTorch's AdamW then skips them entirely (no weight decay either).
        public var receivesGradient: Bool

        /// The number of elements.
        public var count: Int { shape.reduce(1, *) }
        /// The element range in the flat buffers.
        public var range: Range<Int> { offset..<(offset + count) }
    }

    /// Offsets of one transformer block's tensors.
    struct Block {
        var ln1Weight = 0, ln1Bias = 0
        /// Flow: query, key and value projections stacked as one (3C, C) `nn.Linear` weight,
        /// then their three biases. Softmax: GPT-2's `c_attn`, (C, 3C) `Conv1D`.
        var qkvWeight = 0, qkvBias = 0
        /// Flow: `out_projection` (C, C) `nn.Linear`. Softmax: `c_proj` (C, C) `Conv1D`.
        var projectionWeight = 0, projectionBias = 0
        var ln2Weight = 0, ln2Bias = 0
        var fcWeight = 0, fcBias = 0
        var fcProjectionWeight = 0, fcProjectionBias = 0
    }

    /// Every tensor, in buffer order.
    public let entries: [Entry]
    /// Total number of floats.
    public let count: Int

    // Offsets the kernels use.
    let timestepEmbedding, returnWeight, returnBias, stateWeight, stateBias, actionWeight, actionBias: Int
    let embedNormWeight, embedNormBias, finalNormWeight, finalNormBias: Int
    let predictStateWeight, predictStateBias, predictActionWeight, predictActionBias: Int
    let predictReturnWeight, predictReturnBias: Int
    let blocks: [Block]

    /// The layout of a model with this configuration.
    public init(configuration: ModelConfiguration) {
        let C = configuration.embeddingDimension
        let S = configuration.stateDimension
        let A = configuration.actionDimension
        let F = configuration.mlpDimension
        var entries: [Entry] = []
        var cursor = 0
        @discardableResult
        func add(_ name: String, _ shape: [Int], gradient: Bool = true) -> Int {
            entries.append(Entry(name: name, shape: shape, offset: cursor, receivesGradient: gradient))
            defer { cursor += shape.reduce(1, *) }
            return cursor
        }
        timestepEmbedding = add("embed_timestep.weight", [configuration.maxEpisodeLength, C])
        returnWeight = add("embed_return.weight", [C, 1])
        returnBias = add("embed_return.bias", [C])
        stateWeight = add("embed_state.weight", [C, S])
        stateBias = add("embed_state.bias", [C])
        actionWeight = add("embed_action.weight", [C, A])
        actionBias = add("embed_action.bias", [C])
        embedNormWeight = add("embed_ln.weight", [C])
        embedNormBias = add("embed_ln.bias", [C])
        var blocks: [Block] = []
        for layer in 0..<configuration.layerCount {
            let prefix = "transformer.h.\(layer)."
            var block = Block()
            block.ln1Weight = add(prefix + "ln_1.weight", [C])
            block.ln1Bias = add(prefix + "ln_1.bias", [C])
            switch configuration.attention {
            case .flow:
                let attention = prefix + "attn.att."
                block.qkvWeight = add(attention + "query_projection.weight", [C, C])
                add(attention + "key_projection.weight", [C, C])
                add(attention + "value_projection.weight", [C, C])
                block.qkvBias = add(attention + "query_projection.bias", [C])
                add(attention + "key_projection.bias", [C])
                add(attention + "value_projection.bias", [C])
                block.projectionWeight = add(attention + "out_projection.weight", [C, C])
                block.projectionBias = add(attention + "out_projection.bias", [C])
            case .softmax:
                block.qkvWeight = add(prefix + "attn.c_attn.weight", [C, 3 * C])
                block.qkvBias = add(prefix + "attn.c_attn.bias", [3 * C])
                block.projectionWeight = add(prefix + "attn.c_proj.weight", [C, C])
                block.projectionBias = add(prefix + "attn.c_proj.bias", [C])
            }
            block.ln2Weight = add(prefix + "ln_2.weight", [C])
            block.ln2Bias = add(prefix + "ln_2.bias", [C])
            block.fcWeight = add(prefix + "mlp.c_fc.weight", [C, F])
            block.fcBias = add(prefix + "mlp.c_fc.bias", [F])
            block.fcProjectionWeight = add(prefix + "mlp.c_proj.weight", [F, C])
            block.fcProjectionBias = add(prefix + "mlp.c_proj.bias", [C])
            blocks.append(block)
        }
        self.blocks = blocks
        finalNormWeight = add("transformer.ln_f.weight", [C])
        finalNormBias = add("transformer.ln_f.bias", [C])
        predictStateWeight = add("predict_state.weight", [S, C], gradient: false)
        predictStateBias = add("predict_state.bias", [S], gradient: false)
        predictActionWeight = add("predict_action.0.weight", [A, C])
        predictActionBias = add("predict_action.0.bias", [A])
        predictReturnWeight = add("predict_return.weight", [1, C], gradient: false)
        predictReturnBias = add("predict_return.bias", [1], gradient: false)
        // GPT-2's unused token embedding: kept so state dicts match the reference key for key.
        add("transformer.wte.weight", [1, C], gradient: false)
        self.entries = entries
        self.count = cursor
    }

    /// The entry with this name, if any.
    public func entry(named name: String) -> Entry? {
        entries.first { $0.name == name }
    }
}
