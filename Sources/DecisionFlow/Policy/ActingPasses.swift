#if canImport(Glibc)
    import Glibc
#endif

// The two passes an `ActingEngine` runs, each only as far as the action head:
// - a window pass computes whole windows from nothing: an agent's first step, a window that
//   slid (every position, and so Flow-Attention's normalization, moved), or any step when
//   reuse is off. Growing windows keep what the next step continues from.
// - an append pass continues growing windows: it runs only the four tokens a step changes
//   (the previous action, now taken, and the new return-to-go, state and placeholder) on top
//   of what each agent carried: its Flow-Attention state, or its softmax keys and values.
//
// Both follow `DecisionTransformer.forward` operation for operation, without dropout, and
// only as far as each sequence's action: after the last block's attention, everything runs
// on one row per sequence, the state token the action is read from.

extension ActingWorkspace {
    /// Runs the model on the first `count` windows of `windows` (all of `windows.timesteps`
    /// steps, agents in `sequenceAgents`). With `keepsState`, each agent's window may grow at
    /// its next step: flow attention folds every token but the last (the action placeholder)
    /// into the agent's state; softmax attention caches the window's projections.
    ///
    /// Returns the action head's output: sequence b's action at row b.
    func windowPass(_ weights: ModelWeights, count B: Int, keepsState: Bool) -> UnsafeMutablePointer<Float> {
        let c = configuration
        let T = windows.timesteps
        let L = WindowTokens.count(steps: T)
        let rows = B * L
        let (C, _, _, _, H, _) = c.letters
        precondition(B >= 1 && B <= windowCapacity(timesteps: T))
        windows.count = B
        let work = work(rows: rows)
        if keepsState, let recurrence {
            for b in 0..<B { recurrence.clear(sequence: sequenceAgents[b]) }
        }
        weights.embedAllTokens(windows, into: projected, work: work)
        runBlocks(weights, rows: rows, sequences: B, actionRow: WindowTokens.decision(steps: T), work: work) { layer in
            if keyCache != nil && keepsState {
                for b in 0..<B {
                    cachedProjections(agent: sequenceAgents[b], layer: layer).update(
                        from: qkv + b * L * 3 * C, count: L * 3 * C)
                }
            }
            var attention = ActingAttention(
                workspace: self, layer: layer, rowsPerSequence: L, keepsState: keepsState, appends: false)
            let pairs = B * H
            if c.attention == .flow, !keepsState, pairs < work.threadCount, L > flowScratch[0].chunk {
                // One long window: spread its chunks over the workers instead.
                attention.chunkWork = FlowChunkWork(work: work, scratches: flowScratch)
                withUnsafePointer(to: attention) { pointer in
                    for pair in 0..<pairs { ActingAttention.forward(UnsafeRawPointer(pointer), pair, 0) }
                }
            } else {
                work.forEach(pairs, attention, ActingAttention.forward)
            }
        }
        return actionHead(weights, count: B, work: work)
    }

    /// Continues the first `count` agents' growing windows (agents in `sequenceAgents`, their
    /// last two steps in `tails`; softmax: their windows' new row counts in `cachedRows`).
    ///
    /// Returns the action head's output: sequence b's action at row b.
    func appendPass(_ weights: ModelWeights, count B: Int) -> UnsafeMutablePointer<Float> {
        let c = configuration
        let (C, _, _, _, H, _) = c.letters
        precondition(B >= 1 && B <= appendCapacity && tails.timesteps == 2)
        let tokens = WindowTokens.appended  // of the last two steps
        let R = tokens.count
        let rows = B * R
        let work = work(rows: rows)
        tails.count = B
        for b in 0..<B {
            for token in tokens {
                weights.embedToken(tails, sequence: b, token: token, into: projected + (b * R + token - tokens.lowerBound) * C)
            }
        }
        runBlocks(
            weights, rows: rows, sequences: B, actionRow: WindowTokens.decision(steps: 2) - tokens.lowerBound, work: work
        ) { layer in
            if keyCache != nil {
                for b in 0..<B {
                    let cached = cachedProjections(agent: sequenceAgents[b], layer: layer)
                    (cached + (cachedRows[b] - R) * 3 * C).update(from: qkv + b * R * 3 * C, count: R * 3 * C)
                }
            }
            let attention = ActingAttention(
                workspace: self, layer: layer, rowsPerSequence: R, keepsState: true, appends: true)
            work.forEach(B * H, attention, ActingAttention.forward)
        }
        return actionHead(weights, count: B, work: work)
    }

    /// ln_f and the action head on the first `count` rows of `x`, one per sequence.
    private func actionHead(_ weights: ModelWeights, count B: Int, work: ParallelWork) -> UnsafeMutablePointer<Float> {
        let c = configuration
        let (C, _, A, _, _, _) = c.letters
        let p = UnsafePointer(weights.base)
        let layout = weights.layout
        layerNormForward(
            out: normed, mean: mean, rstd: rstd, inp: x, weight: p + layout.finalNormWeight,
            bias: p + layout.finalNormBias, N: B, C: C, eps: c.layerNormEpsilon, work: work)
        linearForward(
            out: actions, ldOut: A, inp: normed, ldIn: C, weight: p + layout.predictActionWeight,
            bias: p + layout.predictActionBias, layout: .outIn, N: B, I: C, O: A, work: work)
        return actions
    }

    /// The embedding LayerNorm and every block on `rows` token rows (`sequences` sequences of
    /// equal length) whose embeddings are in `projected`. `attend(layer)` runs the attention
    /// of a layer from `qkv` into `attention`. After the last block's attention only row
    /// `actionRow` of each sequence goes on (its state token), so `x` ends with one row per
    /// sequence.
    private func runBlocks(
        _ weights: ModelWeights, rows: Int, sequences B: Int, actionRow: Int, work: ParallelWork,
        attend: (Int) -> Void
    ) {
        let c = configuration
        let (C, _, _, F, _, _) = c.letters
        let p = UnsafePointer(weights.base)
        let layout = weights.layout
        let eps = c.layerNormEpsilon
        layerNormForward(
            out: x, mean: mean, rstd: rstd, inp: projected, weight: p + layout.embedNormWeight,
            bias: p + layout.embedNormBias, N: rows, C: C, eps: eps, work: work)
        let projectionLayout: WeightLayout = c.attention == .flow ? .outIn : .inOut
        for (index, block) in layout.blocks.enumerated() {
            layerNormForward(
                out: normed, mean: mean, rstd: rstd, inp: x, weight: p + block.ln1Weight, bias: p + block.ln1Bias,
                N: rows, C: C, eps: eps, work: work)
            linearForward(
                out: qkv, ldOut: 3 * C, inp: normed, ldIn: C, weight: p + block.qkvWeight, bias: p + block.qkvBias,
                layout: projectionLayout, N: rows, I: C, O: 3 * C, work: work)
            attend(index)
            // The last block goes on with each sequence's state token only, packed densely.
            let last = index == layout.blocks.count - 1
            let stride = rows / B
            let n = last ? B : rows  // rows from here to the block's end
            linearForward(
                out: projected, ldOut: C, inp: attention + (last ? actionRow * C : 0), ldIn: last ? stride * C : C,
                weight: p + block.projectionWeight, bias: p + block.projectionBias, layout: projectionLayout, N: n,
                I: C, O: C, work: work)
            if last {
                // Row b reads row b·stride + actionRow ≥ b, and rows are taken in order: no
                // row is overwritten before it is read.
                for b in 0..<B {
                    let (to, from) = (x + b * C, x + (b * stride + actionRow) * C)
                    for i in 0..<C { to[i] = from[i] + projected[b * C + i] }
                }
            } else {
                for i in 0..<(rows * C) { x[i] = x[i] + projected[i] }
            }
            layerNormForward(
                out: normed, mean: mean, rstd: rstd, inp: x, weight: p + block.ln2Weight, bias: p + block.ln2Bias,
                N: n, C: C, eps: eps, work: work)
            linearForward(
                out: fcPre, ldOut: F, inp: normed, ldIn: C, weight: p + block.fcWeight, bias: p + block.fcBias,
                layout: .inOut, N: n, I: C, O: F, work: work)
            activationForward(out: fcActivated, inp: fcPre, count: n * F, kind: c.activation, work: work)
            linearForward(
                out: projected, ldOut: C, inp: fcActivated, ldIn: F, weight: p + block.fcProjectionWeight,
                bias: p + block.fcProjectionBias, layout: .inOut, N: n, I: F, O: C, work: work)
            for i in 0..<(n * C) { x[i] = x[i] + projected[i] }
        }
    }
}

/// Everything the per-(sequence, head) attention of one layer of an acting pass needs,
/// passed to the workers by pointer (see `ParallelKernel`).
struct ActingAttention {
    var kind: AttentionKind
    var H: Int, C: Int, D: Int
    var eps: Float
    /// Token rows per sequence in `qkv` and `output`.
    var L: Int
    var qkv, output, beforeAllocation: UnsafeMutablePointer<Float>
    var flowCache: UnsafeMutablePointer<Float>
    var flowScratch: [FlowAttentionScratch]
    /// Flow: the layer's carried states, when the pass continues or keeps them.
    var states: FlowRecurrence.Layer?
    /// The agent of each sequence.
    var agents: UnsafePointer<Int>
    /// Flow: one long window's chunks spread over the workers.
    var chunkWork: FlowChunkWork? = nil
    /// Softmax append: attention reads each agent's cached rows of this layer, the first at
    /// `keys` and the next agent's `keyStride` floats on, holding `cachedRows[b]` rows.
    var appends: Bool
    var keys: UnsafeMutablePointer<Float>?
    var keyStride: Int
    var cachedRows: UnsafePointer<Int>
    /// Softmax: (L, L) probabilities per worker, L = 3K.
    var softmaxScratch: UnsafeMutablePointer<Float>?
    var softmaxStride: Int

    init(workspace w: ActingWorkspace, layer: Int, rowsPerSequence: Int, keepsState: Bool, appends: Bool) {
        let c = w.configuration
        kind = c.attention
        (H, C, D, eps, L) = (c.headCount, c.embeddingDimension, c.headDimension, c.flowEpsilon, rowsPerSequence)
        (qkv, output, beforeAllocation, flowCache, flowScratch) = (
            w.qkv, w.attention, w.beforeAllocation, w.flowCache, w.flowScratch
        )
        states = keepsState ? w.recurrence?.layer(layer) : nil
        agents = UnsafePointer(w.sequenceAgents)
        self.appends = appends
        keys = w.keyCache.map { _ in w.cachedProjections(agent: 0, layer: layer) }
        keyStride = w.keyStride
        cachedRows = UnsafePointer(w.cachedRows)
        softmaxScratch = w.softmaxScratch
        softmaxStride = c.tokenCount * c.tokenCount
    }

    /// Floats of `flowCache` per pair.
    var flowCacheStride: Int { FlowCache.count(L: L, D: D, chunk: flowScratch[0].chunk) }

    /// The forward pass of pair `pair` = b·H + h on worker `worker`.
    static let forward: ParallelKernel = { raw, pair, worker in
        let a = raw.assumingMemoryBound(to: ActingAttention.self).pointee
        let (L, C, D) = (a.L, a.C, a.D)
        let b = pair / a.H
        let h = pair % a.H
        let y = a.output + b * L * C + h * D
        switch a.kind {
        case .flow:
            let q = a.qkv + b * L * 3 * C + h * D
            // Fold every token but the last, the action placeholder, into the carried state.
            let state = a.states.map { $0.state(sequence: a.agents[b], head: h) }
            flowAttentionForward(
                y: y, ldY: C, beforeAllocation: a.beforeAllocation + b * L * C + h * D, ldB: C,
                cache: a.flowCache + pair * a.flowCacheStride, q: q, k: q + C, v: q + 2 * C, ldQKV: 3 * C, L: L, D: D,
                eps: a.eps, scratch: a.flowScratch[worker], state: state, committedRows: state == nil ? nil : L - 1,
                chunkWork: a.chunkWork)
        case .softmax:
            // A window reads its own rows; an append reads the agent's cached rows, the new ones
            // last, and computes only the new queries.
            let keys = a.appends ? a.cachedRows[b] : L
            let q = a.appends ? a.keys! + a.agents[b] * a.keyStride + h * D : a.qkv + b * L * 3 * C + h * D
            let probabilities = a.softmaxScratch! + worker * a.softmaxStride
            softmaxAttentionForward(
                y: y, ldY: C, probabilities: probabilities, dropMask: nil, dropped: probabilities, q: q, k: q + C,
                v: q + 2 * C, ldQKV: 3 * C, keyMask: nil, L: keys, D: D, firstRow: keys - L)
        }
    }
}
