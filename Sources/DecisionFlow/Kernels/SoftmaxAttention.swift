import CBLAS

#if canImport(Glibc)
    import Glibc
#endif

// GPT-2's causal softmax attention of one (batch, head) pair: the Decision Transformer
// baseline. Reference: the `Attention` class of Flowformer_RL's trajectory_gpt2.py.
//
//   w = q·kᵀ / √D;  w[i, j] = −10⁴ where j > i (torch.where, so no gradient flows there);
//   w += (1 − mask_j) · −10⁴;  p = softmax_j(w);  p = dropout(p);  out = p · v
//
// Dimension letters: L positions, D head width. q, k, v are read with row stride ldQKV.

/// Forward pass of one pair: writes `probabilities` (L, L) and the output rows `y`.
///
/// - Parameters:
///   - dropMask: (L, L) dropout multipliers of the probabilities, drawn beforehand so pairs
///     can run in any order; nil without dropout (acting), when `dropped` is not read.
///   - dropped: (L, L) scratch for the dropped-out probabilities.
///   - keyMask: L multipliers of the keys, 0 for padding; nil when every key is real.
///   - firstRow: query rows computed, firstRow..<L: acting computes the rows a step added
///     over keys kept from earlier steps. `y` is the output of row firstRow, and
///     `probabilities` keeps its full (L, L) indexing.
func softmaxAttentionForward(
    y: UnsafeMutablePointer<Float>, ldY: Int, probabilities: UnsafeMutablePointer<Float>,
    dropMask: UnsafePointer<Float>?, dropped: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldQKV: Int, keyMask: UnsafePointer<Float>?, L: Int, D: Int,
    firstRow: Int = 0
) {
    let scale = 1 / Float(D).squareRoot()
    let rows = L - firstRow
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(L), Int32(D), scale, q + firstRow * ldQKV,
        Int32(ldQKV), k, Int32(ldQKV), 0, probabilities + firstRow * L, Int32(L))
    for i in firstRow..<L {
        let row = probabilities + i * L
        var maximum = -Float.infinity
        for j in 0..<L {
            if j > i { row[j] = -1e4 }
            // A real key adds (1 − 1)·−10⁴ = −0, which changes nothing: skipping it is exact.
            if let keyMask { row[j] += (1 - keyMask[j]) * -1e4 }
            maximum = max(maximum, row[j])
        }
        var sum: Float = 0
        for j in 0..<L {
            row[j] = expf(row[j] - maximum)
            sum += row[j]
        }
        for j in 0..<L { row[j] /= sum }
    }
    var weights = UnsafePointer(probabilities)
    if let dropMask {
        for index in (firstRow * L)..<(L * L) { dropped[index] = probabilities[index] * dropMask[index] }
        weights = UnsafePointer(dropped)
    }
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(D), Int32(L), 1, weights + firstRow * L, Int32(L),
        v, Int32(ldQKV), 0, y, Int32(ldY))
}

/// Backward pass of one pair; accumulates into `dq`, `dk`, `dv`. `scratch` holds 2·L·L floats.
func softmaxAttentionBackward(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, ldD: Int,
    dy: UnsafePointer<Float>, ldY: Int, probabilities: UnsafePointer<Float>, dropMask: UnsafePointer<Float>,
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldQKV: Int, L: Int, D: Int,
    scratch: UnsafeMutablePointer<Float>
) {
    let scale = 1 / Float(D).squareRoot()
    let dropped = scratch
    let dScores = scratch + L * L
    for index in 0..<(L * L) { dropped[index] = probabilities[index] * dropMask[index] }
    // out = dropped · v  ⇒  dv += droppedᵀ · dy ; dDropped = dy · vᵀ
    cblas_sgemm(
        CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(D), Int32(L), 1, dropped, Int32(L), dy, Int32(ldY), 1,
        dv, Int32(ldD))
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(L), Int32(D), 1, dy, Int32(ldY), v, Int32(ldQKV), 0,
        dScores, Int32(L))
    // dropped = p · mask; p = softmax(w)  ⇒  dw = p ⊙ (dp − Σ_j dp·p); no gradient where j > i.
    for i in 0..<L {
        let p = probabilities + i * L
        let g = dScores + i * L
        let m = dropMask + i * L
        var dot: Float = 0
        for j in 0..<L {
            g[j] *= m[j]
            dot += g[j] * p[j]
        }
        for j in 0..<L { g[j] = j > i ? 0 : p[j] * (g[j] - dot) * scale }
    }
    // w = q·kᵀ·scale  ⇒  dq += dw·k, dk += dwᵀ·q (scale already folded into dw)
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(L), Int32(D), Int32(L), 1, dScores, Int32(L), k, Int32(ldQKV),
        1, dq, Int32(ldD))
    cblas_sgemm(
        CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(D), Int32(L), 1, dScores, Int32(L), q, Int32(ldQKV), 1,
        dk, Int32(ldD))
}
