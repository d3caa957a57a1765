/// Everything the per-(batch, head) attention kernels of one layer of a training (or
/// complete) pass need, passed to the worker threads by pointer (see `ParallelKernel`).
/// Acting has its own, `ActingAttention`.
struct AttentionPairs {
    var kind: AttentionKind
    /// Heads, token rows per sequence in the buffers, channels, head width.
    var H: Int, L: Int, C: Int, D: Int
    var eps: Float
    /// (N, 3C) projections; the flow forward pass leaves sigmoid(q), sigmoid(k) in place.
    var qkv: UnsafeMutablePointer<Float>
    /// Forward: the attention output (N, C). Backward: its gradient.
    var output: UnsafeMutablePointer<Float>
    /// Flow: (N, C) causal dot products before allocation.
    var beforeAllocation: UnsafeMutablePointer<Float>
    /// Flow: per-position scalars and chunk states; softmax: probabilities.
    var cache: UnsafeMutablePointer<Float>
    /// Softmax: dropout multipliers of the probabilities.
    var dropMask: UnsafeMutablePointer<Float>
    /// Softmax: (B, L) key mask.
    var tokenMask: UnsafePointer<Float>
    /// Backward: (N, 3C) gradient of the projections.
    var dqkv: UnsafeMutablePointer<Float>
    var flowScratch: [FlowAttentionScratch]
    /// Softmax: 3·L·L floats per worker.
    var softmaxScratch: UnsafeMutablePointer<Float>?
    /// Flow, set by `run`: spreads one pair's chunks over the workers.
    var chunkWork: FlowChunkWork? = nil

    /// Runs `kernel` (`forward` or `backward`) for `count` pairs. With fewer flow pairs than
    /// workers (a single long sequence), the pairs run one after another, each with its
    /// chunks spread over the workers; otherwise the pairs themselves are spread.
    func run(_ kernel: ParallelKernel, count: Int, work: ParallelWork) {
        guard kind == .flow, count < work.threadCount, L > flowScratch[0].chunk else {
            work.forEach(count, self, kernel)
            return
        }
        var pairs = self
        pairs.chunkWork = FlowChunkWork(work: work, scratches: flowScratch)
        withUnsafePointer(to: pairs) { pointer in
            for pair in 0..<count { kernel(UnsafeRawPointer(pointer), pair, 0) }
        }
    }

    /// Floats of `cache` per pair.
    var cacheStride: Int {
        kind == .flow ? FlowCache.count(L: L, D: D, chunk: flowScratch[0].chunk) : L * L
    }

    /// Forward pass of pair `pair` = b·H + h on worker `worker`.
    static let forward: ParallelKernel = { raw, pair, worker in
        let a = raw.assumingMemoryBound(to: AttentionPairs.self).pointee
        let (L, C, D) = (a.L, a.C, a.D)
        let b = pair / a.H
        let h = pair % a.H
        let q = a.qkv + b * L * 3 * C + h * D
        let y = a.output + b * L * C + h * D
        switch a.kind {
        case .flow:
            flowAttentionForward(
                y: y, ldY: C, beforeAllocation: a.beforeAllocation + b * L * C + h * D, ldB: C,
                cache: a.cache + pair * a.cacheStride, q: q, k: q + C, v: q + 2 * C, ldQKV: 3 * C, L: L, D: D,
                eps: a.eps, scratch: a.flowScratch[worker], chunkWork: a.chunkWork)
        case .softmax:
            softmaxAttentionForward(
                y: y, ldY: C, probabilities: a.cache + pair * L * L, dropMask: a.dropMask + pair * L * L,
                dropped: a.softmaxScratch! + worker * 3 * L * L, q: q, k: q + C, v: q + 2 * C, ldQKV: 3 * C,
                keyMask: a.tokenMask + b * L, L: L, D: D)
        }
    }

    /// Backward pass of pair `pair` on worker `worker`: accumulates into `dqkv`.
    static let backward: ParallelKernel = { raw, pair, worker in
        let a = raw.assumingMemoryBound(to: AttentionPairs.self).pointee
        let (L, C, D) = (a.L, a.C, a.D)
        let b = pair / a.H
        let h = pair % a.H
        let head = b * L * 3 * C + h * D
        let q = a.qkv + head
        let dq = a.dqkv + head
        let dy = a.output + b * L * C + h * D
        switch a.kind {
        case .flow:
            flowAttentionBackward(
                dq: dq, dk: dq + C, dv: dq + 2 * C, ldD: 3 * C, dy: dy, ldY: C,
                beforeAllocation: a.beforeAllocation + b * L * C + h * D, ldB: C,
                cache: a.cache + pair * a.cacheStride, q: q, k: q + C, v: q + 2 * C, ldQKV: 3 * C, L: L, D: D,
                eps: a.eps, scratch: a.flowScratch[worker], chunkWork: a.chunkWork)
        case .softmax:
            softmaxAttentionBackward(
                dq: dq, dk: dq + C, dv: dq + 2 * C, ldD: 3 * C, dy: dy, ldY: C, probabilities: a.cache + pair * L * L,
                dropMask: a.dropMask + pair * L * L, q: q, k: q + C, v: q + 2 * C, ldQKV: 3 * C, L: L, D: D,
                scratch: a.softmaxScratch! + worker * 3 * L * L + L * L)
        }
    }
}
