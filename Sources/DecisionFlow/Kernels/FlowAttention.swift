import CBLAS

#if canImport(Glibc)
    import Glibc
#endif

// Causal Flow-Attention (Wu et al., ICML 2022) of one (batch, head) pair, fast version.
// Reference: thuml/Flowformer, Flowformer_RL/decision_transformer/models/flowformer_attention.py.
// The literal O(L²·D) version is `NaiveFlowAttention`; tests compare the two.
//
// Dimension letters: L positions, D head width. Matrices are row-major with a row stride
// (`ld…`), so a head is read straight out of the (B·L, 3C) projection buffer.
//
// The reference forms the (L, D, D) cumulative outer products cumsum(k ⊗ v). Here the
// D-vector causal sums (Σk, Σq, Σk·so, Σq·si) are running sums, and the causal dot product is
// the exact masked L×L form: scores = tril(qs · kᵀ), out = scores · vs: two sgemm calls of
// L·L·D each instead of L·D² work and memory.

/// Per-position scalars the forward pass caches for the backward pass, in this order.
enum FlowCache {
    static let sinkIncoming = 0, sourceOutgoing = 1, conservedSourceRaw = 2, sinkAllocation = 3
    static let expSource = 4, expSourceSum = 5
    /// Scalars per position.
    static let width = 6
}

/// Work buffers for one (batch, head) pair; one per worker thread, reused every call.
final class FlowAttentionScratch {
    let L: Int
    let D: Int
    /// (L, D) each.
    let qs, vs, go, gqs, gvs, keySum, querySum, keyOutSum, queryInSum: UnsafeMutablePointer<Float>
    /// (L, L) each.
    let scores, dScores: UnsafeMutablePointer<Float>
    /// Backward only: 4 per-position scalar gradients (4·L) and 4 reverse running sums (4·D).
    let positionGradients, reverseSums: UnsafeMutablePointer<Float>
    private let storage: UnsafeMutablePointer<Float>

    init(L: Int, D: Int) {
        self.L = L
        self.D = D
        let count = 9 * L * D + 2 * L * L + 4 * L + 4 * D
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
        var cursor = storage
        func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            defer { cursor += count }
            return cursor
        }
        qs = take(L * D)
        vs = take(L * D)
        go = take(L * D)
        gqs = take(L * D)
        gvs = take(L * D)
        keySum = take(L * D)
        querySum = take(L * D)
        keyOutSum = take(L * D)
        queryInSum = take(L * D)
        scores = take(L * L)
        dScores = take(L * L)
        positionGradients = take(4 * L)
        reverseSums = take(4 * D)
    }

    deinit { storage.deallocate() }
}

@inline(__always) private func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

/// Zeroes the strictly upper triangle of rows `firstRow…` of an (L, L) matrix: the causal mask.
@inline(__always) private func maskUpperTriangle(_ matrix: UnsafeMutablePointer<Float>, L: Int, firstRow: Int = 0) {
    for i in firstRow..<L {
        let row = matrix + i * L
        for j in (i + 1)..<max(L, i + 1) { row[j] = 0 }
    }
}

/// Forward pass of one pair. Applies the sigmoid kernel to `q` and `k` in place (the
/// backward pass reads the sigmoid outputs), writes the output rows `y` (L, D), the causal
/// dot product before allocation `beforeAllocation` (L, D) and `cache` (L × FlowCache.width).
///
/// With `firstRow` > 0, rows before it are those of the previous call, unchanged: their q and
/// k already hold the sigmoid, and their outputs are kept. The O(L·D) causal sums still run
/// from row 0 (later rows need them); the L×L products run for rows `firstRow…` only.
func flowAttentionForward(
    y: UnsafeMutablePointer<Float>, ldY: Int, beforeAllocation: UnsafeMutablePointer<Float>, ldB: Int,
    cache: UnsafeMutablePointer<Float>, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
    v: UnsafePointer<Float>, ldQKV: Int, L: Int, D: Int, eps: Float, scratch: FlowAttentionScratch, firstRow: Int = 0
) {
    // queries = sigmoid(queries); keys = sigmoid(keys)
    for i in firstRow..<L {
        for d in 0..<D {
            q[i * ldQKV + d] = sigmoid(q[i * ldQKV + d])
            k[i * ldQKV + d] = sigmoid(k[i * ldQKV + d])
        }
    }
    // (1) sink_incoming = n / ((q+eps)·(cumsum k + eps)); source_outgoing = n / ((k+eps)·(cumsum q + eps))
    let keySum = scratch.keySum
    let querySum = scratch.querySum
    for d in 0..<D {
        keySum[d] = 0
        querySum[d] = 0
    }
    for i in 0..<L {
        let qi = q + i * ldQKV
        let ki = k + i * ldQKV
        for d in 0..<D {
            keySum[d] += ki[d]
            querySum[d] += qi[d]
        }
        let sinkDot = vectorShiftedDot(qi, eps, keySum, eps, count: D)
        let sourceDot = vectorShiftedDot(ki, eps, querySum, eps, count: D)
        let n = Float(i + 1)
        cache[i * FlowCache.width + FlowCache.sinkIncoming] = n / sinkDot
        cache[i * FlowCache.width + FlowCache.sourceOutgoing] = n / sourceDot
    }
    // (2) conserved_sink = (q+eps)·(cumsum(k·so) + eps)/n; conserved_source = clamp((k+eps)·(cumsum(q·si) + eps)/n, ±10)
    // (3) sink_allocation = sigmoid(conserved_sink); competition = exp(cs)/cumsum(exp(cs))·n
    let keyOutSum = scratch.keyOutSum  // used here as a running D-vector only
    let queryInSum = scratch.queryInSum
    for d in 0..<D {
        keyOutSum[d] = 0
        queryInSum[d] = 0
    }
    var expSum: Float = 0
    for i in 0..<L {
        let qi = q + i * ldQKV
        let ki = k + i * ldQKV
        let line = cache + i * FlowCache.width
        let si = line[FlowCache.sinkIncoming]
        let so = line[FlowCache.sourceOutgoing]
        for d in 0..<D {
            keyOutSum[d] += ki[d] * so
            queryInSum[d] += qi[d] * si
        }
        let sinkDot = vectorShiftedDot(qi, eps, keyOutSum, eps, count: D)
        let sourceDot = vectorShiftedDot(ki, eps, queryInSum, eps, count: D)
        let n = Float(i + 1)
        let conservedSink = sinkDot / n
        let conservedSource = sourceDot / n
        let e = expf(min(max(conservedSource, -10), 10))
        expSum += e
        line[FlowCache.conservedSourceRaw] = conservedSource
        line[FlowCache.sinkAllocation] = sigmoid(conservedSink)
        line[FlowCache.expSource] = e
        line[FlowCache.expSourceSum] = expSum
    }
    // (4) qs = q · si / n ; vs = v · competition
    let qs = scratch.qs
    let vs = scratch.vs
    for i in 0..<L {
        let line = cache + i * FlowCache.width
        let n = Float(i + 1)
        let queryScale = line[FlowCache.sinkIncoming] / n
        let competition = line[FlowCache.expSource] / line[FlowCache.expSourceSum] * n
        for d in 0..<D {
            qs[i * D + d] = q[i * ldQKV + d] * queryScale
            vs[i * D + d] = v[i * ldQKV + d] * competition
        }
    }
    // scores = tril(qs · kᵀ); beforeAllocation = scores · vs; y = beforeAllocation · sink_allocation
    let rows = L - firstRow
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(L), Int32(D), 1, qs + firstRow * D, Int32(D), k,
        Int32(ldQKV), 0, scratch.scores + firstRow * L, Int32(L))
    maskUpperTriangle(scratch.scores, L: L, firstRow: firstRow)
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(D), Int32(L), 1, scratch.scores + firstRow * L,
        Int32(L), vs, Int32(D), 0, beforeAllocation + firstRow * ldB, Int32(ldB))
    for i in firstRow..<L {
        let allocation = cache[i * FlowCache.width + FlowCache.sinkAllocation]
        for d in 0..<D { y[i * ldY + d] = beforeAllocation[i * ldB + d] * allocation }
    }
}

/// Backward pass of one pair. `q` and `k` hold the sigmoid outputs the forward pass left
/// there. Accumulates (+=) the gradients with respect to the pre-sigmoid queries and keys and
/// the values into `dq`, `dk`, `dv`.
func flowAttentionBackward(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, ldD: Int,
    dy: UnsafePointer<Float>, ldY: Int, beforeAllocation: UnsafePointer<Float>, ldB: Int, cache: UnsafePointer<Float>,
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldQKV: Int, L: Int, D: Int,
    eps: Float, scratch: FlowAttentionScratch
) {
    let qs = scratch.qs
    let vs = scratch.vs
    let go = scratch.go
    let gqs = scratch.gqs
    let gvs = scratch.gvs
    // Gradients with respect to the sigmoid outputs q and k, (L, D) each.
    let gq = scratch.keySum
    let gk = scratch.querySum
    // Per-position scalar gradients.
    let dSink = scratch.positionGradients  // d conservedSink
    let dSource = scratch.positionGradients + L  // d conservedSource (after the clamp's gate)
    let dSinkIncoming = scratch.positionGradients + 2 * L

    // y = beforeAllocation · sinkAllocation  ⇒  go = dy · sinkAllocation.
    // Recompute qs = q · si / n and vs = v · competition.
    for i in 0..<L {
        let line = cache + i * FlowCache.width
        let n = Float(i + 1)
        let allocation = line[FlowCache.sinkAllocation]
        let queryScale = line[FlowCache.sinkIncoming] / n
        let competition = line[FlowCache.expSource] / line[FlowCache.expSourceSum] * n
        for d in 0..<D {
            go[i * D + d] = dy[i * ldY + d] * allocation
            qs[i * D + d] = q[i * ldQKV + d] * queryScale
            vs[i * D + d] = v[i * ldQKV + d] * competition
        }
    }
    // beforeAllocation = tril(qs · kᵀ) · vs  ⇒
    //   dScores = tril(go · vsᵀ), gvs = scoresᵀ · go, gqs = dScores · k, gk = dScoresᵀ · qs
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(L), Int32(D), 1, qs, Int32(D), k, Int32(ldQKV), 0,
        scratch.scores, Int32(L))
    maskUpperTriangle(scratch.scores, L: L)
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(L), Int32(D), 1, go, Int32(D), vs, Int32(D), 0,
        scratch.dScores, Int32(L))
    maskUpperTriangle(scratch.dScores, L: L)
    cblas_sgemm(
        CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(D), Int32(L), 1, scratch.scores, Int32(L), go,
        Int32(D), 0, gvs, Int32(D))
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(L), Int32(D), Int32(L), 1, scratch.dScores, Int32(L), k,
        Int32(ldQKV), 0, gqs, Int32(D))
    cblas_sgemm(
        CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(D), Int32(L), 1, scratch.dScores, Int32(L), qs,
        Int32(D), 0, gk, Int32(D))

    // vs = v · competition  ⇒  dv += gvs · competition, dCompetition_i = gvs_i · v_i.
    // competition_i = e_i / E_i · n_i, E_i = Σ_{j≤i} e_j  ⇒  dE_i = −dCompetition_i · n_i e_i / E_i²,
    //   and every e_j with j ≤ i receives dE_i: a reverse running sum.
    // e = exp(clamp(conservedSourceRaw, ±10))  ⇒  gradient only where the clamp is inactive.
    // sinkAllocation = sigmoid(conservedSink)  ⇒  dSink = (dy · beforeAllocation) · a(1 − a).
    var reverseExpGradient: Float = 0
    for i in stride(from: L - 1, through: 0, by: -1) {
        let line = cache + i * FlowCache.width
        let n = Float(i + 1)
        let e = line[FlowCache.expSource]
        let total = line[FlowCache.expSourceSum]
        let competition = e / total * n
        for d in 0..<D { dv[i * ldD + d] += gvs[i * D + d] * competition }
        let dCompetition = vectorDot(gvs + i * D, v + i * ldQKV, count: D)
        let dAllocation = vectorDot(dy + i * ldY, beforeAllocation + i * ldB, count: D)
        reverseExpGradient += -dCompetition * n * e / (total * total)
        let dExp = dCompetition * n / total + reverseExpGradient
        let raw = line[FlowCache.conservedSourceRaw]
        dSource[i] = raw >= -10 && raw <= 10 ? dExp * e : 0
        let allocation = line[FlowCache.sinkAllocation]
        dSink[i] = dAllocation * allocation * (1 - allocation)
    }

    // qs = q · si / n  ⇒  gq = gqs · si / n, dSinkIncoming = (gqs · q) / n.
    for i in 0..<L {
        let n = Float(i + 1)
        let si = cache[i * FlowCache.width + FlowCache.sinkIncoming]
        for d in 0..<D { gq[i * D + d] = gqs[i * D + d] * si / n }
        dSinkIncoming[i] = vectorDot(gqs + i * D, q + i * ldQKV, count: D) / n
    }

    // Recompute the forward's causal D-vector sums at every position (qs, vs and go are free
    // now): Σk, Σq, Σk·so, Σq·si.
    let keyPrefix = qs
    let queryPrefix = vs
    let keyOutPrefix = go
    let queryInPrefix = gqs
    for i in 0..<L {
        let line = cache + i * FlowCache.width
        let si = line[FlowCache.sinkIncoming]
        let so = line[FlowCache.sourceOutgoing]
        for d in 0..<D {
            let before = i * D + d - D
            let ki = k[i * ldQKV + d]
            let qi = q[i * ldQKV + d]
            keyPrefix[i * D + d] = ki + (i > 0 ? keyPrefix[before] : 0)
            queryPrefix[i * D + d] = qi + (i > 0 ? queryPrefix[before] : 0)
            keyOutPrefix[i * D + d] = ki * so + (i > 0 ? keyOutPrefix[before] : 0)
            queryInPrefix[i * D + d] = qi * si + (i > 0 ? queryInPrefix[before] : 0)
        }
    }

    // One reverse sweep. Each causal sum Σ_{j≤i} x_j sends its gradient to every x_j with
    // j ≤ i, so the D-vector gradients are reverse running sums:
    //   conservedSink_i = (q_i+eps)·(Σ_{j≤i} k_j so_j + eps)/n_i
    //   conservedSource_i = (k_i+eps)·(Σ_{j≤i} q_j si_j + eps)/n_i
    //   sinkIncoming_i = n_i / a_i,  a_i = (q_i+eps)·(Σ_{j≤i} k_j + eps)
    //   sourceOutgoing_i = n_i / b_i,  b_i = (k_i+eps)·(Σ_{j≤i} q_j + eps)
    let reverseKeyOut = scratch.reverseSums
    let reverseQueryIn = scratch.reverseSums + D
    let reverseKey = scratch.reverseSums + 2 * D
    let reverseQuery = scratch.reverseSums + 3 * D
    for d in 0..<(4 * D) { scratch.reverseSums[d] = 0 }
    for i in stride(from: L - 1, through: 0, by: -1) {
        let line = cache + i * FlowCache.width
        let n = Float(i + 1)
        let si = line[FlowCache.sinkIncoming]
        let so = line[FlowCache.sourceOutgoing]
        let sinkScale = dSink[i] / n
        let sourceScale = dSource[i] / n
        for d in 0..<D {
            let qi = q[i * ldQKV + d]
            let ki = k[i * ldQKV + d]
            gq[i * D + d] += sinkScale * (keyOutPrefix[i * D + d] + eps)
            gk[i * D + d] += sourceScale * (queryInPrefix[i * D + d] + eps)
            reverseKeyOut[d] += sinkScale * (qi + eps)
            reverseQueryIn[d] += sourceScale * (ki + eps)
            gk[i * D + d] += reverseKeyOut[d] * so
            gq[i * D + d] += reverseQueryIn[d] * si
        }
        let dSo = vectorDot(reverseKeyOut, k + i * ldQKV, count: D)
        let dSi = dSinkIncoming[i] + vectorDot(reverseQueryIn, q + i * ldQKV, count: D)
        // si = n / a  ⇒  da = −dsi · n / a² = −dsi · si² / n (and likewise for so, b).
        let dSinkDot = -dSi * si * si / n
        let dSourceDot = -dSo * so * so / n
        for d in 0..<D {
            let qi = q[i * ldQKV + d]
            let ki = k[i * ldQKV + d]
            gq[i * D + d] += dSinkDot * (keyPrefix[i * D + d] + eps)
            gk[i * D + d] += dSourceDot * (queryPrefix[i * D + d] + eps)
            reverseKey[d] += dSinkDot * (qi + eps)
            reverseQuery[d] += dSourceDot * (ki + eps)
            gk[i * D + d] += reverseKey[d]
            gq[i * D + d] += reverseQuery[d]
        }
    }

    // q = sigmoid(queries), k = sigmoid(keys)  ⇒  multiply by σ(1 − σ).
    for i in 0..<L {
        for d in 0..<D {
            let qi = q[i * ldQKV + d]
            let ki = k[i * ldQKV + d]
            dq[i * ldD + d] += gq[i * D + d] * qi * (1 - qi)
            dk[i * ldD + d] += gk[i * D + d] * ki * (1 - ki)
        }
    }
}
