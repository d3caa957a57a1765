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

    init(configuration: ModelConfiguration, batchCapacity: Int, flowChunk: Int) {
        let B = batchCapacity
        let T = configuration.contextLength
        let L = configuration.tokenCount
        let N = B * L
        let (C, S, A, F, H, _) = configuration.letters
        let flow = configuration.attention == .flow
        let cacheCount = flow ? B * H * FlowCache.count(L: L, D: configuration.headDimension, chunk: flowChunk) : B * H * L * L

        /// Every buffer, each named beside its size (see `CarvedStorage`).
        func carve(_ take: (Int) -> UnsafeMutablePointer<Float>) -> ActivationBuffers.Carved {
            Carved(
                stacked: take(N * C), embedNorm: take(N * C), embedNormMean: take(N), embedNormRstd: take(N),
                embedDropMask: take(N * C),
                residuals: (0...configuration.layerCount).map { _ in take(N * C) },
                blocks: (0..<configuration.layerCount).map { _ in
                    Block(
                        ln1: take(N * C), ln1Mean: take(N), ln1Rstd: take(N), qkv: take(N * 3 * C),
                        attentionCache: take(cacheCount), attentionDropMask: take(flow ? 0 : cacheCount),
                        beforeAllocation: take(flow ? N * C : 0), attentionOutput: take(N * C),
                        attentionResidualMask: take(N * C), residualMid: take(N * C), ln2: take(N * C), ln2Mean: take(N),
                        ln2Rstd: take(N), fcPre: take(N * F), fcActivated: take(N * F), mlpResidualMask: take(N * C))
                },
                finalNorm: take(N * C), finalNormMean: take(N), finalNormRstd: take(N),
                actionPredictions: take(B * T * A), statePredictions: take(B * T * S), returnPredictions: take(B * T),
                dResidual: take(N * C), dNorm: take(N * C), dProjection: take(N * C), dAttentionOutput: take(N * C),
                dStacked: take(N * C), dQKV: take(N * 3 * C), dFc: take(N * F), dActionPredictions: take(B * T * A),
                scratch: take(N * max(C, F)), ones: take(N),
                normPartials: take(((N + layerNormRowBlock - 1) / layerNormRowBlock) * 2 * C))
        }
        let allocation = CarvedStorage(carve)
        storage = allocation.storage
        let carved = allocation.buffers
        self.batchCapacity = B
        (stacked, embedNorm, embedNormMean, embedNormRstd, embedDropMask) = (
            carved.stacked, carved.embedNorm, carved.embedNormMean, carved.embedNormRstd, carved.embedDropMask
        )
        (residuals, blocks) = (carved.residuals, carved.blocks)
        (finalNorm, finalNormMean, finalNormRstd) = (carved.finalNorm, carved.finalNormMean, carved.finalNormRstd)
        (actionPredictions, statePredictions, returnPredictions) = (
            carved.actionPredictions, carved.statePredictions, carved.returnPredictions
        )
        (dResidual, dNorm, dProjection, dAttentionOutput, dStacked) = (
            carved.dResidual, carved.dNorm, carved.dProjection, carved.dAttentionOutput, carved.dStacked
        )
        (dQKV, dFc, dActionPredictions) = (carved.dQKV, carved.dFc, carved.dActionPredictions)
        (scratch, ones, normPartials) = (carved.scratch, carved.ones, carved.normPartials)
        ones.update(repeating: 1, count: N)
    }

    /// The pointers `carve` hands out, by name.
    private struct Carved {
        var stacked, embedNorm, embedNormMean, embedNormRstd, embedDropMask: UnsafeMutablePointer<Float>
        var residuals: [UnsafeMutablePointer<Float>]
        var blocks: [Block]
        var finalNorm, finalNormMean, finalNormRstd: UnsafeMutablePointer<Float>
        var actionPredictions, statePredictions, returnPredictions: UnsafeMutablePointer<Float>
        var dResidual, dNorm, dProjection, dAttentionOutput, dStacked: UnsafeMutablePointer<Float>
        var dQKV, dFc, dActionPredictions, scratch, ones, normPartials: UnsafeMutablePointer<Float>
    }

    deinit { storage.deallocate() }
}
