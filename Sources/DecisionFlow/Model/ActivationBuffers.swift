/// Every activation the forward pass keeps for the backward pass, and the backward pass's
/// work buffers, carved out of one allocation sized for `batchCapacity` sequences of the
/// full context. Allocated once; a training step then allocates nothing.
///
/// Dimension letters: N = B·L token rows, C channels, F MLP width, H heads, L tokens.
final class ActivationBuffers {
    struct Block {
        var ln1, ln1Mean, ln1Rstd: UnsafeMutablePointer<Float>
        /// (N, 3C): projections; for flow attention q and k hold their sigmoid after forward.
        var qkv: UnsafeMutablePointer<Float>
        /// Flow: per (batch, head) pair, L × FlowCache.width scalars and the chunk states.
        /// Softmax: (B, H, L, L) probabilities.
        var attentionCache: UnsafeMutablePointer<Float>
        /// Softmax only: (B, H, L, L) dropout multipliers of the probabilities.
        var attentionDropMask: UnsafeMutablePointer<Float>
        /// Flow only: (N, C) the causal dot product before allocation.
        var beforeAllocation: UnsafeMutablePointer<Float>
        /// (N, C): attention output, input of the output projection.
        var attentionOutput: UnsafeMutablePointer<Float>
        /// (N, C) dropout multipliers after the output projection.
        var attentionResidualMask: UnsafeMutablePointer<Float>
        /// (N, C): residual stream after attention, input of ln_2.
        var residualMid: UnsafeMutablePointer<Float>
        var ln2, ln2Mean, ln2Rstd: UnsafeMutablePointer<Float>
        /// (N, F) before and after the activation.
        var fcPre, fcActivated: UnsafeMutablePointer<Float>
        /// (N, C) dropout multipliers after the MLP.
        var mlpResidualMask: UnsafeMutablePointer<Float>
    }

    let batchCapacity: Int
    /// (N, C): the interleaved (R, s, a) embeddings before embed_ln.
    let stacked: UnsafeMutablePointer<Float>
    let embedNorm, embedNormMean, embedNormRstd, embedDropMask: UnsafeMutablePointer<Float>
    /// layerCount + 1 residual streams (N, C): the input of each block, then the output.
    let residuals: [UnsafeMutablePointer<Float>]
    let blocks: [Block]
    let finalNorm, finalNormMean, finalNormRstd: UnsafeMutablePointer<Float>
    /// (B, T, A), (B, T, S), (B, T).
    let actionPredictions, statePredictions, returnPredictions: UnsafeMutablePointer<Float>

    // Backward work buffers.
    let dResidual, dNorm, dProjection, dAttentionOutput, dStacked: UnsafeMutablePointer<Float>
    let dQKV, dFc, dActionPredictions: UnsafeMutablePointer<Float>
    /// Scratch for per-token temporaries (N, max(C, F)).
    let scratch: UnsafeMutablePointer<Float>
    /// N ones, for bias gradients as matrix-vector products.
    let ones: UnsafeMutablePointer<Float>
    /// Per-row-block partial sums of the parallel LayerNorm backward.
    let normPartials: UnsafeMutablePointer<Float>

    private let storage: UnsafeMutablePointer<Float>
    let floatCount: Int

    init(configuration: ModelConfiguration, batchCapacity: Int, flowChunk: Int) {
        let B = batchCapacity
        let T = configuration.contextLength
        let L = configuration.tokenCount
        let N = B * L
        let C = configuration.embeddingDimension
        let F = configuration.mlpDimension
        let H = configuration.headCount
        let flow = configuration.attention == .flow
        let cacheCount = flow ? B * H * FlowCache.count(L: L, D: configuration.headDimension, chunk: flowChunk) : B * H * L * L
        var sizes: [Int] = []
        // Compute the total first, then hand out slices in the same order.
        func plan(_ count: Int) { sizes.append(count) }
        plan(N * C); plan(N * C); plan(N); plan(N); plan(N * C)  // stacked, embedNorm, mean, rstd, mask
        for _ in 0...configuration.layerCount { plan(N * C) }
        for _ in 0..<configuration.layerCount {
            plan(N * C); plan(N); plan(N); plan(N * 3 * C); plan(cacheCount); plan(flow ? 0 : cacheCount)
            plan(flow ? N * C : 0); plan(N * C); plan(N * C); plan(N * C); plan(N * C); plan(N); plan(N)
            plan(N * F); plan(N * F); plan(N * C)
        }
        plan(N * C); plan(N); plan(N)
        plan(B * T * configuration.actionDimension); plan(B * T * configuration.stateDimension); plan(B * T)
        plan(N * C); plan(N * C); plan(N * C); plan(N * C); plan(N * C); plan(N * 3 * C); plan(N * F)
        plan(B * T * configuration.actionDimension); plan(N * max(C, F))
        plan(N); plan(((N + layerNormRowBlock - 1) / layerNormRowBlock) * 2 * C)
        floatCount = sizes.reduce(0, +)
        storage = .allocate(capacity: floatCount)
        storage.initialize(repeating: 0, count: floatCount)

        var cursor = storage
        var index = 0
        func take() -> UnsafeMutablePointer<Float> {
            defer {
                cursor += sizes[index]
                index += 1
            }
            return cursor
        }
        self.batchCapacity = B
        stacked = take(); embedNorm = take(); embedNormMean = take(); embedNormRstd = take(); embedDropMask = take()
        residuals = (0...configuration.layerCount).map { _ in take() }
        blocks = (0..<configuration.layerCount).map { _ in
            Block(
                ln1: take(), ln1Mean: take(), ln1Rstd: take(), qkv: take(), attentionCache: take(),
                attentionDropMask: take(), beforeAllocation: take(), attentionOutput: take(),
                attentionResidualMask: take(), residualMid: take(), ln2: take(), ln2Mean: take(), ln2Rstd: take(),
                fcPre: take(), fcActivated: take(), mlpResidualMask: take())
        }
        finalNorm = take(); finalNormMean = take(); finalNormRstd = take()
        actionPredictions = take(); statePredictions = take(); returnPredictions = take()
        dResidual = take(); dNorm = take(); dProjection = take(); dAttentionOutput = take(); dStacked = take()
        dQKV = take(); dFc = take(); dActionPredictions = take(); scratch = take()
        ones = take(); normPartials = take()
        ones.update(repeating: 1, count: N)
    }

    deinit { storage.deallocate() }
}
