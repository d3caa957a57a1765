import CBLAS

#if canImport(Glibc)
    import Glibc
#endif

// Causal Flow-Attention (Wu et al., ICML 2022) of one (batch, head) pair, fast version.
// Reference: thuml/Flowformer, Flowformer_RL/decision_transformer/models/flowformer_attention.py.
// The literal O(L²·D) version is `NaiveFlowAttention`; tests compare the two.
//
// Dimension letters: L positions, D head width, c the chunk length. Matrices are row-major
// with a row stride (`ld…`), so a head is read straight out of the (B·L, 3C) projection buffer.
//
// Every quantity at position i depends on positions ≤ i only through running sums: the
// D-vectors Σk, Σq, Σk·so, Σq·si, the scalar Σexp(conserved source), and, for the causal dot
// product, the D×D matrix Σ k ⊗ vs. The reference forms that matrix at every position (an
// (L, D, D) cumsum). Here the dot product runs in chunks of c positions: inside a chunk the
// exact masked c×c form, tril(qs · kᵀ) · vs (two sgemm calls), plus qs · S, where S is the
// D×D sum over the earlier chunks; then S += kᵀ · vs over the chunk. Cost O(L·(c + D)·D),
// memory O(L·D + c² + D²) per pair, and the D×D state at each chunk boundary for the
// backward pass. With L ≤ c there is one chunk and no state: the masked L×L form.
//
// The same running state, carried between calls (`FlowState`), lets a policy add tokens to a
// growing sequence at a cost that does not depend on how long the sequence already is.

/// Per-position scalars the forward pass caches for the backward pass, in this order; after
/// the L rows of scalars, the D×D state before each chunk but the first.
enum FlowCache {
    static let sinkIncoming = 0, sourceOutgoing = 1, conservedSourceRaw = 2, sinkAllocation = 3
    static let expSource = 4, expSourceSum = 5
    /// Scalars per position.
    static let width = 6

    /// Floats the cache of one (batch, head) pair takes.
    static func count(L: Int, D: Int, chunk: Int) -> Int {
        L * width + (FlowChunking.count(L: L, chunk: chunk) - 1) * D * D
    }
}

/// How a sequence is cut into chunks.
public enum FlowChunking {
    /// The chunk length of sequences longer than `singleBlockLimit` tokens, chosen with
    /// `d4rl-run bench context --chunks` (README, *Context length*): at K 1000, chunks of 32
    /// beat 16, 64 and 128.
    public static let longSequenceLength = 32
    /// Sequences of at most this many tokens run as one masked block: at K 20 (60 tokens)
    /// one block beats two chunks of 32, since it needs no D×D state.
    public static let singleBlockLimit = 64

    /// The chunk length a model whose sequences hold `tokens` tokens uses by default.
    public static func defaultLength(tokens: Int) -> Int {
        tokens <= singleBlockLimit ? max(tokens, 1) : longSequenceLength
    }

    /// Chunks of `chunk` positions covering L (the last may be shorter); at least 1.
    static func count(L: Int, chunk: Int) -> Int { max(1, (L + chunk - 1) / chunk) }
}

/// The running state of one (sequence, head) pair after some positions: what the next
/// positions need from the earlier ones. Laid out as `kv` (D×D, Σ k ⊗ vs), then the D-vectors
/// Σk, Σq, Σk·so, Σq·si, then the scalars Σexp(clamped conserved source) and the count of
/// positions folded in.
enum FlowState {
    static func count(D: Int) -> Int { D * D + 4 * D + 2 }
    static func kv(_ s: UnsafeMutablePointer<Float>, D: Int) -> UnsafeMutablePointer<Float> { s }
    static func keySum(_ s: UnsafeMutablePointer<Float>, D: Int) -> UnsafeMutablePointer<Float> { s + D * D }
    static func querySum(_ s: UnsafeMutablePointer<Float>, D: Int) -> UnsafeMutablePointer<Float> { s + D * D + D }
    static func keyOutSum(_ s: UnsafeMutablePointer<Float>, D: Int) -> UnsafeMutablePointer<Float> {
        s + D * D + 2 * D
    }
    static func queryInSum(_ s: UnsafeMutablePointer<Float>, D: Int) -> UnsafeMutablePointer<Float> {
        s + D * D + 3 * D
    }
    static func expSum(_ s: UnsafeMutablePointer<Float>, D: Int) -> UnsafeMutablePointer<Float> { s + D * D + 4 * D }
    /// Positions folded in, as a Float (exact up to 2²⁴).
    static func positions(_ s: UnsafeMutablePointer<Float>, D: Int) -> UnsafeMutablePointer<Float> {
        s + D * D + 4 * D + 1
    }
    /// The state before any position.
    static func clear(_ s: UnsafeMutablePointer<Float>, D: Int) { s.update(repeating: 0, count: count(D: D)) }
}

/// Work buffers for one (batch, head) pair; one per worker thread, reused every call.
final class FlowAttentionScratch {
    let L: Int
    let D: Int
    /// The chunk length (≤ L when L > 0).
    let chunk: Int
    /// (L, D) each.
    let qs, vs, go, gqs, gvs, keySum, querySum, keyOutSum, queryInSum: UnsafeMutablePointer<Float>
    /// (c, c) each.
    let scores, dScores: UnsafeMutablePointer<Float>
    /// Backward only: 4 per-position scalar gradients (4·L) and 4 reverse running sums (4·D).
    let positionGradients, reverseSums: UnsafeMutablePointer<Float>
    /// A running state, for passes that start from nothing; and the backward pass's D×D
    /// gradient of the state after the current chunk.
    let state, stateGradient: UnsafeMutablePointer<Float>
    private let storage: UnsafeMutablePointer<Float>

    init(L: Int, D: Int, chunk: Int? = nil) {
        let chunk = chunk ?? FlowChunking.defaultLength(tokens: L)
        precondition(chunk >= 1)
        self.L = L
        self.D = D
        self.chunk = min(chunk, max(L, 1))
        let c = self.chunk
        let count = 9 * L * D + 2 * c * c + 4 * L + 4 * D + FlowState.count(D: D) + D * D
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
        scores = take(c * c)
        dScores = take(c * c)
        positionGradients = take(4 * L)
        reverseSums = take(4 * D)
        state = take(FlowState.count(D: D))
        stateGradient = take(D * D)
    }

    deinit { storage.deallocate() }
}

@inline(__always) private func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

/// Zeroes the strictly upper triangle of an (m, m) matrix: the causal mask.
@inline(__always) private func maskUpperTriangle(_ matrix: UnsafeMutablePointer<Float>, m: Int) {
    for i in 0..<m {
        let row = matrix + i * m
        for j in (i + 1)..<max(m, i + 1) { row[j] = 0 }
    }
}

/// C = alpha·op(A)·op(B) + beta·C, row-major, with Int arguments.
@inline(__always) private func gemm(
    _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n),
        Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// A chunk's own part of the causal dot product (m rows; `qs`, `k`, `vs` and the output
/// point at the chunk's first row): beforeAllocation = tril(qs · kᵀ) · vs, written.
@inline(__always) private func intraChunkForward(
    qs: UnsafePointer<Float>, k: UnsafePointer<Float>, ldK: Int, vs: UnsafePointer<Float>,
    beforeAllocation: UnsafeMutablePointer<Float>, ldB: Int, m: Int, D: Int, scores: UnsafeMutablePointer<Float>
) {
    gemm(false, true, m, m, D, qs, D, k, ldK, 0, scores, m)
    maskUpperTriangle(scores, m: m)
    gemm(false, false, m, D, m, scores, m, vs, D, 0, beforeAllocation, ldB)
}

/// The gradients of `intraChunkForward` given `go` = d beforeAllocation, written:
/// dScores = tril(go · vsᵀ), gvs = scoresᵀ · go, gqs = dScores · k, gk = dScoresᵀ · qs.
@inline(__always) private func intraChunkBackward(
    qs: UnsafePointer<Float>, k: UnsafePointer<Float>, ldK: Int, vs: UnsafePointer<Float>, go: UnsafePointer<Float>,
    gqs: UnsafeMutablePointer<Float>, gvs: UnsafeMutablePointer<Float>, gk: UnsafeMutablePointer<Float>, m: Int, D: Int,
    scratch: FlowAttentionScratch
) {
    gemm(false, true, m, m, D, qs, D, k, ldK, 0, scratch.scores, m)
    maskUpperTriangle(scratch.scores, m: m)
    gemm(false, true, m, m, D, go, D, vs, D, 0, scratch.dScores, m)
    maskUpperTriangle(scratch.dScores, m: m)
    gemm(true, false, m, D, m, scratch.scores, m, go, D, 0, gvs, D)
    gemm(false, false, m, D, m, scratch.dScores, m, k, ldK, 0, gqs, D)
    gemm(true, false, m, D, m, scratch.dScores, m, qs, D, 0, gk, D)
}

/// Forward pass of one pair. Applies the sigmoid kernel to `q` and `k` in place (the
/// backward pass reads the sigmoid outputs), writes the output rows `y` (L, D), the causal
/// dot product before allocation `beforeAllocation` (L, D), and `cache`
/// (`FlowCache.count(L:D:chunk:)` floats).
///
/// - Parameters:
///   - state: the running state of the positions before row 0 (`FlowState`), advanced in
///     place through the first `committedRows` rows; row i is then position
///     `positions + i`. Nil (training): start from no earlier position and keep no state.
///   - committedRows: rows folded into `state` (default L). A policy leaves out its last
///     token, the action placeholder that the next call replaces. Every chunk but the last
///     must be committed whole.
///   - chunkWork: spreads the chunks over workers (for passes with fewer pairs than
///     workers); only without `state`.
func flowAttentionForward(
    y: UnsafeMutablePointer<Float>, ldY: Int, beforeAllocation: UnsafeMutablePointer<Float>, ldB: Int,
    cache: UnsafeMutablePointer<Float>, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
    v: UnsafePointer<Float>, ldQKV: Int, L: Int, D: Int, eps: Float, scratch: FlowAttentionScratch,
    state: UnsafeMutablePointer<Float>? = nil, committedRows: Int? = nil, chunkWork: FlowChunkWork? = nil
) {
    let chunk = scratch.chunk
    let chunkCount = FlowChunking.count(L: L, chunk: chunk)
    let committed = committedRows ?? L
    precondition(L <= scratch.L && committed <= L && committed >= (chunkCount - 1) * chunk)
    let st = state ?? scratch.state
    if state == nil { FlowState.clear(st, D: D) }
    let offset = Int(FlowState.positions(st, D: D).pointee)
    let keepsState = state != nil

    // queries = sigmoid(queries); keys = sigmoid(keys)
    for i in 0..<L {
        vectorSigmoidInPlace(q + i * ldQKV, count: D)
        vectorSigmoidInPlace(k + i * ldQKV, count: D)
    }
    /// Copies the running D-vector `sum` into the state once the committed rows are in.
    @inline(__always) func commit(_ sum: UnsafeMutablePointer<Float>, to target: UnsafeMutablePointer<Float>, row: Int)
    {
        if keepsState && row == committed - 1 { target.update(from: sum, count: D) }
    }
    // (1) sink_incoming = n / ((q+eps)·(cumsum k + eps)); source_outgoing = n / ((k+eps)·(cumsum q + eps))
    let keySum = scratch.keySum
    let querySum = scratch.querySum
    keySum.update(from: FlowState.keySum(st, D: D), count: D)
    querySum.update(from: FlowState.querySum(st, D: D), count: D)
    for i in 0..<L {
        let qi = q + i * ldQKV
        let ki = k + i * ldQKV
        vectorScaleAdd(keySum, ki, 1, keySum, count: D)
        vectorScaleAdd(querySum, qi, 1, querySum, count: D)
        commit(keySum, to: FlowState.keySum(st, D: D), row: i)
        commit(querySum, to: FlowState.querySum(st, D: D), row: i)
        let sinkDot = vectorShiftedDot(qi, eps, keySum, eps, count: D)
        let sourceDot = vectorShiftedDot(ki, eps, querySum, eps, count: D)
        let n = Float(offset + i + 1)
        cache[i * FlowCache.width + FlowCache.sinkIncoming] = n / sinkDot
        cache[i * FlowCache.width + FlowCache.sourceOutgoing] = n / sourceDot
    }
    // (2) conserved_sink = (q+eps)·(cumsum(k·so) + eps)/n; conserved_source = clamp((k+eps)·(cumsum(q·si) + eps)/n, ±10)
    // (3) sink_allocation = sigmoid(conserved_sink); competition = exp(cs)/cumsum(exp(cs))·n
    let keyOutSum = scratch.keyOutSum  // used here as a running D-vector only
    let queryInSum = scratch.queryInSum
    keyOutSum.update(from: FlowState.keyOutSum(st, D: D), count: D)
    queryInSum.update(from: FlowState.queryInSum(st, D: D), count: D)
    var expSum = FlowState.expSum(st, D: D).pointee
    for i in 0..<L {
        let qi = q + i * ldQKV
        let ki = k + i * ldQKV
        let line = cache + i * FlowCache.width
        let si = line[FlowCache.sinkIncoming]
        let so = line[FlowCache.sourceOutgoing]
        vectorScaleAdd(keyOutSum, ki, so, keyOutSum, count: D)
        vectorScaleAdd(queryInSum, qi, si, queryInSum, count: D)
        commit(keyOutSum, to: FlowState.keyOutSum(st, D: D), row: i)
        commit(queryInSum, to: FlowState.queryInSum(st, D: D), row: i)
        let sinkDot = vectorShiftedDot(qi, eps, keyOutSum, eps, count: D)
        let sourceDot = vectorShiftedDot(ki, eps, queryInSum, eps, count: D)
        let n = Float(offset + i + 1)
        let conservedSink = sinkDot / n
        let conservedSource = sourceDot / n
        let e = expf(min(max(conservedSource, -10), 10))
        expSum += e
        if keepsState && i == committed - 1 { FlowState.expSum(st, D: D).pointee = expSum }
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
        let n = Float(offset + i + 1)
        let queryScale = line[FlowCache.sinkIncoming] / n
        let competition = line[FlowCache.expSource] / line[FlowCache.expSourceSum] * n
        vectorScale(qs + i * D, q + i * ldQKV, queryScale, count: D)
        vectorScale(vs + i * D, v + i * ldQKV, competition, count: D)
    }
    // (5) beforeAllocation = causal_dot_product(qs, k, vs), chunk by chunk:
    //   rows I: tril(qs_I · k_Iᵀ) · vs_I + qs_I · kv, then kv += k_Iᵀ · vs_I.
    let kv = FlowState.kv(st, D: D)
    let chunkStates = cache + L * FlowCache.width
    if let chunkWork, state == nil, chunkCount > 1 {
        chunkWork.forward(
            qs: qs, k: k, ldK: ldQKV, vs: vs, beforeAllocation: beforeAllocation, ldB: ldB, states: chunkStates, L: L,
            D: D, chunk: chunk)
    } else {
        for index in 0..<chunkCount {
            let c0 = index * chunk
            let m = min(chunk, L - c0)
            if index > 0 { (chunkStates + (index - 1) * D * D).update(from: kv, count: D * D) }
            intraChunkForward(
                qs: qs + c0 * D, k: k + c0 * ldQKV, ldK: ldQKV, vs: vs + c0 * D,
                beforeAllocation: beforeAllocation + c0 * ldB, ldB: ldB, m: m, D: D, scores: scratch.scores)
            // Earlier positions exist (an earlier chunk, or a carried state): add their part.
            if index > 0 || offset > 0 {
                gemm(false, false, m, D, D, qs + c0 * D, D, kv, D, 1, beforeAllocation + c0 * ldB, ldB)
            }
            let folded = min(c0 + m, committed) - c0
            if folded > 0 && (index < chunkCount - 1 || keepsState) {
                gemm(true, false, D, D, folded, k + c0 * ldQKV, ldQKV, vs + c0 * D, D, 1, kv, D)
            }
        }
    }
    if keepsState { FlowState.positions(st, D: D).pointee += Float(committed) }
    // y = beforeAllocation · sink_allocation
    for i in 0..<L {
        let allocation = cache[i * FlowCache.width + FlowCache.sinkAllocation]
        vectorScale(y + i * ldY, beforeAllocation + i * ldB, allocation, count: D)
    }
}

/// Backward pass of one pair, after a forward pass that started from no earlier position
/// (`state` nil). With `chunkWork` it reuses the space of the chunk states in `cache`. `q` and `k` hold the sigmoid outputs the forward pass left there.
/// Accumulates (+=) the gradients with respect to the pre-sigmoid queries and keys and the
/// values into `dq`, `dk`, `dv`.
func flowAttentionBackward(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, ldD: Int,
    dy: UnsafePointer<Float>, ldY: Int, beforeAllocation: UnsafePointer<Float>, ldB: Int,
    cache: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    ldQKV: Int, L: Int, D: Int, eps: Float, scratch: FlowAttentionScratch, chunkWork: FlowChunkWork? = nil
) {
    precondition(L <= scratch.L)
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
        vectorScale(go + i * D, dy + i * ldY, allocation, count: D)
        vectorScale(qs + i * D, q + i * ldQKV, queryScale, count: D)
        vectorScale(vs + i * D, v + i * ldQKV, competition, count: D)
    }
    // beforeAllocation_I = tril(qs_I · k_Iᵀ) · vs_I + qs_I · kv_I, chunk by chunk, where kv_I
    // (saved by the forward pass) sums k ⊗ vs over the earlier chunks. From the last chunk
    // back, with G the gradient of kv after chunk I (Σ over later chunks J of qs_Jᵀ · go_J):
    //   dScores = tril(go_I · vs_Iᵀ)
    //   gvs_I = scoresᵀ · go_I + k_I · G
    //   gqs_I = dScores · k_I + go_I · kv_Iᵀ
    //   gk_I  = dScoresᵀ · qs_I + vs_I · Gᵀ
    // then G += qs_Iᵀ · go_I.
    let chunk = scratch.chunk
    let chunkCount = FlowChunking.count(L: L, chunk: chunk)
    let chunkStates = cache + L * FlowCache.width
    let stateGradient = scratch.stateGradient
    if let chunkWork, chunkCount > 1 {
        chunkWork.backward(
            qs: qs, k: k, ldK: ldQKV, vs: vs, go: go, gqs: gqs, gvs: gvs, gk: gk, states: chunkStates, L: L, D: D,
            chunk: chunk)
    } else {
        for index in stride(from: chunkCount - 1, through: 0, by: -1) {
            let c0 = index * chunk
            let m = min(chunk, L - c0)
            intraChunkBackward(
                qs: qs + c0 * D, k: k + c0 * ldQKV, ldK: ldQKV, vs: vs + c0 * D, go: go + c0 * D, gqs: gqs + c0 * D,
                gvs: gvs + c0 * D, gk: gk + c0 * D, m: m, D: D, scratch: scratch)
            if index < chunkCount - 1 {
                gemm(false, false, m, D, D, k + c0 * ldQKV, ldQKV, stateGradient, D, 1, gvs + c0 * D, D)
                gemm(false, true, m, D, D, vs + c0 * D, D, stateGradient, D, 1, gk + c0 * D, D)
            }
            if index > 0 {
                gemm(false, true, m, D, D, go + c0 * D, D, chunkStates + (index - 1) * D * D, D, 1, gqs + c0 * D, D)
                gemm(true, false, D, D, m, qs + c0 * D, D, go + c0 * D, D, index < chunkCount - 1 ? 1 : 0, stateGradient, D)
            }
        }
    }

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
        vectorScaleAdd(dv + i * ldD, gvs + i * D, competition, dv + i * ldD, count: D)
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
        vectorScale(gq + i * D, gqs + i * D, si / n, count: D)
        dSinkIncoming[i] = vectorDot(gqs + i * D, q + i * ldQKV, count: D) / n
    }

    // Recompute the forward's causal D-vector sums at every position (qs, vs and go are free
    // now): Σk, Σq, Σk·so, Σq·si.
    let keyPrefix = qs
    let queryPrefix = vs
    let keyOutPrefix = go
    let queryInPrefix = gqs
    let zeros = scratch.reverseSums  // D zeros: the sums before position 0
    zeros.update(repeating: 0, count: D)
    for i in 0..<L {
        let line = cache + i * FlowCache.width
        let si = line[FlowCache.sinkIncoming]
        let so = line[FlowCache.sourceOutgoing]
        let ki = k + i * ldQKV
        let qi = q + i * ldQKV
        let previous = i * D - D
        vectorScaleAdd(keyPrefix + i * D, ki, 1, i > 0 ? keyPrefix + previous : zeros, count: D)
        vectorScaleAdd(queryPrefix + i * D, qi, 1, i > 0 ? queryPrefix + previous : zeros, count: D)
        vectorScaleAdd(keyOutPrefix + i * D, ki, so, i > 0 ? keyOutPrefix + previous : zeros, count: D)
        vectorScaleAdd(queryInPrefix + i * D, qi, si, i > 0 ? queryInPrefix + previous : zeros, count: D)
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
        reverseSweepStep(
            gq: gq + i * D, gk: gk + i * D, q: q + i * ldQKV, k: k + i * ldQKV, prefixForQ: keyOutPrefix + i * D,
            prefixForK: queryInPrefix + i * D, reverseFromQ: reverseKeyOut, reverseFromK: reverseQueryIn,
            scaleQ: sinkScale, scaleK: sourceScale, keyWeight: so, queryWeight: si, eps: eps, count: D)
        let dSo = vectorDot(reverseKeyOut, k + i * ldQKV, count: D)
        let dSi = dSinkIncoming[i] + vectorDot(reverseQueryIn, q + i * ldQKV, count: D)
        // si = n / a  ⇒  da = −dsi · n / a² = −dsi · si² / n (and likewise for so, b).
        let dSinkDot = -dSi * si * si / n
        let dSourceDot = -dSo * so * so / n
        reverseSweepStep(
            gq: gq + i * D, gk: gk + i * D, q: q + i * ldQKV, k: k + i * ldQKV, prefixForQ: keyPrefix + i * D,
            prefixForK: queryPrefix + i * D, reverseFromQ: reverseKey, reverseFromK: reverseQuery, scaleQ: dSinkDot,
            scaleK: dSourceDot, keyWeight: 1, queryWeight: 1, eps: eps, count: D)
    }

    // q = sigmoid(queries), k = sigmoid(keys)  ⇒  multiply by σ(1 − σ).
    for i in 0..<L {
        sigmoidBackward(dq + i * ldD, gq + i * D, q + i * ldQKV, count: D)
        sigmoidBackward(dk + i * ldD, gk + i * D, k + i * ldQKV, count: D)
    }
}

/// One position of the backward pass's reverse sweep, for one pair of causal sums
/// (`prefixForQ` read by the query side, `prefixForK` by the key side):
///   gq += scaleQ·(prefixForQ + eps);  gk += scaleK·(prefixForK + eps)
///   reverseFromQ += scaleQ·(q + eps);  reverseFromK += scaleK·(k + eps)
///   gk += reverseFromQ·keyWeight;  gq += reverseFromK·queryWeight
@inline(__always) private func reverseSweepStep(
    gq: UnsafeMutablePointer<Float>, gk: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
    k: UnsafePointer<Float>, prefixForQ: UnsafePointer<Float>, prefixForK: UnsafePointer<Float>,
    reverseFromQ: UnsafeMutablePointer<Float>, reverseFromK: UnsafeMutablePointer<Float>, scaleQ: Float,
    scaleK: Float, keyWeight: Float, queryWeight: Float, eps: Float, count: Int
) {
    let (a, b, e) = (SIMD8<Float>(repeating: scaleQ), SIMD8<Float>(repeating: scaleK), SIMD8<Float>(repeating: eps))
    let (wk, wq) = (SIMD8<Float>(repeating: keyWeight), SIMD8<Float>(repeating: queryWeight))
    var d = 0
    while d + 8 <= count {
        var gqv = load8(gq + d) + a * (load8(prefixForQ + d) + e)
        var gkv = load8(gk + d) + b * (load8(prefixForK + d) + e)
        let rq = load8(reverseFromQ + d) + a * (load8(q + d) + e)
        let rk = load8(reverseFromK + d) + b * (load8(k + d) + e)
        gkv += rq * wk
        gqv += rk * wq
        store8(rq, reverseFromQ + d)
        store8(rk, reverseFromK + d)
        store8(gqv, gq + d)
        store8(gkv, gk + d)
        d += 8
    }
    while d < count {
        gq[d] += scaleQ * (prefixForQ[d] + eps)
        gk[d] += scaleK * (prefixForK[d] + eps)
        reverseFromQ[d] += scaleQ * (q[d] + eps)
        reverseFromK[d] += scaleK * (k[d] + eps)
        gk[d] += reverseFromQ[d] * keyWeight
        gq[d] += reverseFromK[d] * queryWeight
        d += 1
    }
}

/// dx += g · σ · (1 − σ), where `sigma` holds σ(x).
@inline(__always) private func sigmoidBackward(
    _ dx: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ sigma: UnsafePointer<Float>, count: Int
) {
    let one = SIMD8<Float>(repeating: 1)
    var d = 0
    while d + 8 <= count {
        let s = load8(sigma + d)
        store8(load8(dx + d) + load8(g + d) * s * (one - s), dx + d)
        d += 8
    }
    while d < count {
        dx[d] += g[d] * sigma[d] * (1 - sigma[d])
        d += 1
    }
}

/// Runs the chunks of one pair's causal dot product on several workers: for passes with
/// fewer (batch, head) pairs than workers, such as a single long sequence.
///
/// The chunks' own products are independent; only the D×D state links them, and it is a sum:
/// S before chunk j is Σ_{i<j} k_iᵀ·vs_i, and its gradient after chunk j is Σ_{i>j} qs_iᵀ·go_i.
/// So each phase computes every chunk's part in parallel, and the sums over chunks (D² adds
/// per chunk) run in between on one thread. Results equal the sequential loop's to rounding.
struct FlowChunkWork {
    let work: ParallelWork
    /// One per worker: each worker's c×c score buffers.
    let scratches: [FlowAttentionScratch]

    /// Everything a phase needs, passed to the workers by pointer.
    private struct Phase {
        var step: Int
        var qs: UnsafeMutablePointer<Float>, vs: UnsafeMutablePointer<Float>, go: UnsafeMutablePointer<Float>?
        var k: UnsafePointer<Float>
        var ldK: Int
        var beforeAllocation: UnsafeMutablePointer<Float>?
        var ldB: Int
        var gqs: UnsafeMutablePointer<Float>?, gvs: UnsafeMutablePointer<Float>?, gk: UnsafeMutablePointer<Float>?
        var states: UnsafeMutablePointer<Float>
        var L: Int, D: Int, chunk: Int
        var scratches: [FlowAttentionScratch]
    }

    /// Forward: beforeAllocation for every chunk, and the chunk states (slot j: S before
    /// chunk j + 1) that the backward pass reads.
    func forward(
        qs: UnsafeMutablePointer<Float>, k: UnsafePointer<Float>, ldK: Int, vs: UnsafeMutablePointer<Float>,
        beforeAllocation: UnsafeMutablePointer<Float>, ldB: Int, states: UnsafeMutablePointer<Float>, L: Int, D: Int,
        chunk: Int
    ) {
        let count = FlowChunking.count(L: L, chunk: chunk)
        var phase = Phase(
            step: 0, qs: qs, vs: vs, go: nil, k: k, ldK: ldK, beforeAllocation: beforeAllocation, ldB: ldB, gqs: nil,
            gvs: nil, gk: nil, states: states, L: L, D: D, chunk: chunk, scratches: scratches)
        work.forEach(count, phase, Self.kernel)  // own products; slot j = k_jᵀ·vs_j
        for j in 1..<(count - 1) { vectorScaleAdd(states + j * D * D, states + (j - 1) * D * D, 1, states + j * D * D, count: D * D) }
        phase.step = 1
        work.forEach(count, phase, Self.kernel)  // + qs_j · S before chunk j
    }

    /// Backward: gqs, gvs, gk for every chunk (written, not accumulated). Overwrites the
    /// chunk states with their gradients.
    func backward(
        qs: UnsafeMutablePointer<Float>, k: UnsafePointer<Float>, ldK: Int, vs: UnsafeMutablePointer<Float>,
        go: UnsafeMutablePointer<Float>, gqs: UnsafeMutablePointer<Float>, gvs: UnsafeMutablePointer<Float>,
        gk: UnsafeMutablePointer<Float>, states: UnsafeMutablePointer<Float>, L: Int, D: Int, chunk: Int
    ) {
        let count = FlowChunking.count(L: L, chunk: chunk)
        var phase = Phase(
            step: 2, qs: qs, vs: vs, go: go, k: k, ldK: ldK, beforeAllocation: nil, ldB: 0, gqs: gqs, gvs: gvs, gk: gk,
            states: states, L: L, D: D, chunk: chunk, scratches: scratches)
        work.forEach(count, phase, Self.kernel)  // own products and go·Sᵀ; then slot j − 1 = qs_jᵀ·go_j
        // Suffix sums: slot j = Σ_{i > j} qs_iᵀ·go_i, the gradient of the state after chunk j.
        for j in stride(from: count - 3, through: 0, by: -1) {
            vectorScaleAdd(states + j * D * D, states + (j + 1) * D * D, 1, states + j * D * D, count: D * D)
        }
        phase.step = 3
        work.forEach(count - 1, phase, Self.kernel)  // + k_j·G, vs_j·Gᵀ
    }

    private static let kernel: ParallelKernel = { raw, j, worker in
        let a = raw.assumingMemoryBound(to: Phase.self).pointee
        let (D, ldK) = (a.D, a.ldK)
        let c0 = j * a.chunk
        let m = min(a.chunk, a.L - c0)
        let scratch = a.scratches[worker]
        let kj = a.k + c0 * ldK
        let qs = a.qs + c0 * D
        let vs = a.vs + c0 * D
        let count = FlowChunking.count(L: a.L, chunk: a.chunk)
        switch a.step {
        case 0:
            intraChunkForward(
                qs: qs, k: kj, ldK: ldK, vs: vs, beforeAllocation: a.beforeAllocation! + c0 * a.ldB, ldB: a.ldB, m: m,
                D: D, scores: scratch.scores)
            if j < count - 1 { gemm(true, false, D, D, m, kj, ldK, vs, D, 0, a.states + j * D * D, D) }
        case 1:
            if j > 0 {
                gemm(false, false, m, D, D, qs, D, a.states + (j - 1) * D * D, D, 1, a.beforeAllocation! + c0 * a.ldB, a.ldB)
            }
        case 2:
            let go = a.go! + c0 * D
            let gqs = a.gqs! + c0 * D
            intraChunkBackward(
                qs: qs, k: kj, ldK: ldK, vs: vs, go: go, gqs: gqs, gvs: a.gvs! + c0 * D, gk: a.gk! + c0 * D, m: m, D: D,
                scratch: scratch)
            if j > 0 {
                let slot = a.states + (j - 1) * D * D
                gemm(false, true, m, D, D, go, D, slot, D, 1, gqs, D)
                gemm(true, false, D, D, m, qs, D, go, D, 0, slot, D)  // read above, then replaced
            }
        default:
            let slot = a.states + j * D * D
            gemm(false, false, m, D, D, kj, ldK, slot, D, 1, a.gvs! + c0 * D, D)
            gemm(false, true, m, D, D, vs, D, slot, D, 1, a.gk! + c0 * D, D)
        }
    }
}
