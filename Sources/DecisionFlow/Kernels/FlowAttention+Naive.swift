import RealModule

// The literal O(L²·D) causal Flow-Attention of one (batch, head) pair: every causal sum is
// an explicit loop over j ≤ i, every quantity has its own array. Slow, generic over the
// floating-point type, and written to be read beside the reference
// (thuml/Flowformer, Flowformer_RL/decision_transformer/models/flowformer_attention.py).
// Tests check its backward by finite differences in Double, and the fast kernel against it.
//
// Dimension letters: L positions, D head width. Inputs are row-major (L, D):
// `queries` and `keys` before the sigmoid kernel, `values` as projected.

/// Every intermediate of the naive forward pass, named as in the reference.
struct NaiveFlowAttention<T: Real> {
    let L: Int
    let D: Int
    let eps: T
    var q: [T]  // sigmoid(queries)
    var k: [T]  // sigmoid(keys)
    var v: [T]
    var normal: [T]  // i + 1
    var sinkIncoming: [T]
    var sourceOutgoing: [T]
    var conservedSink: [T]
    var conservedSourceRaw: [T]  // before the clamp
    var sinkAllocation: [T]
    var expSource: [T]  // exp(clamped conserved source)
    var sourceCompetition: [T]
    var beforeAllocation: [T]  // (L, D): the causal dot product
    var output: [T]  // (L, D)
    /// When set, the causal dot product and its gradient run chunk by chunk through a D×D
    /// state, the fast kernel's scheme, so finite differences can check that scheme in Double.
    let chunk: Int?

    init(queries: [T], keys: [T], values: [T], L: Int, D: Int, eps: T, chunk: Int? = nil) {
        self.L = L
        self.D = D
        self.eps = eps
        self.chunk = chunk
        func sigmoid(_ x: T) -> T { 1 / (1 + T.exp(-x)) }
        q = queries.map(sigmoid)
        k = keys.map(sigmoid)
        v = values
        normal = (0..<L).map { T($0 + 1) }
        let (q, k, v, normal) = (q, k, v, normal)

        // (1) incoming and outgoing flow: dot with the causal sums of the other side.
        let ones = [T](repeating: 1, count: L)
        sinkIncoming = Self.causalDots(q, against: k, weights: ones, L: L, D: D, eps: eps).enumerated().map {
            normal[$0.offset] / $0.element
        }
        sourceOutgoing = Self.causalDots(k, against: q, weights: ones, L: L, D: D, eps: eps).enumerated().map {
            normal[$0.offset] / $0.element
        }
        let (sinkIncoming, sourceOutgoing) = (sinkIncoming, sourceOutgoing)

        // (2) conservation refinement.
        conservedSink = Self.causalDots(q, against: k, weights: sourceOutgoing, L: L, D: D, eps: eps).enumerated().map {
            $0.element / normal[$0.offset]
        }
        conservedSourceRaw = Self.causalDots(k, against: q, weights: sinkIncoming, L: L, D: D, eps: eps).enumerated()
            .map { $0.element / normal[$0.offset] }

        // (3) competition and allocation.
        let (conservedSink, conservedSourceRaw) = (conservedSink, conservedSourceRaw)
        sinkAllocation = conservedSink.map(sigmoid)
        let expSource = conservedSourceRaw.map { T.exp(min(max($0, -10), 10)) }
        self.expSource = expSource
        sourceCompetition = (0..<L).map { i in
            var total: T = 0
            for j in 0...i { total += expSource[j] }
            return expSource[i] / total * normal[i]
        }
        let sourceCompetition = sourceCompetition

        // (4) causal dot product: Σ_{j ≤ i} (q_i·si_i/n_i · k_j) (v_j · comp_j).
        var beforeAllocation = [T](repeating: 0, count: L * D)
        if let chunk {
            let qs = (0..<(L * D)).map { q[$0] * sinkIncoming[$0 / D] / normal[$0 / D] }
            let vs = (0..<(L * D)).map { v[$0] * sourceCompetition[$0 / D] }
            beforeAllocation = Self.chunkedCausalProduct(qs: qs, k: k, vs: vs, L: L, D: D, chunk: chunk)
        } else {
            for i in 0..<L {
                for j in 0...i {
                    var score: T = 0
                    for d in 0..<D { score += q[i * D + d] * (sinkIncoming[i] / normal[i]) * k[j * D + d] }
                    for m in 0..<D { beforeAllocation[i * D + m] += score * v[j * D + m] * sourceCompetition[j] }
                }
            }
        }
        let allocation = sinkAllocation
        output = (0..<(L * D)).map { beforeAllocation[$0] * allocation[$0 / D] }
        self.beforeAllocation = beforeAllocation
    }

    /// Gradients with respect to `queries`, `keys` (before the sigmoid) and `values`, given
    /// the gradient of `output`. Each line differentiates the forward line named beside it.
    func backward(outputGradient dy: [T]) -> (queries: [T], keys: [T], values: [T]) {
        var dq = [T](repeating: 0, count: L * D)
        var dk = [T](repeating: 0, count: L * D)
        var dv = [T](repeating: 0, count: L * D)
        var dSinkIncoming = [T](repeating: 0, count: L)
        var dSourceOutgoing = [T](repeating: 0, count: L)
        var dCompetition = [T](repeating: 0, count: L)
        var dConservedSink = [T](repeating: 0, count: L)

        // output = beforeAllocation · sinkAllocation
        var dBefore = [T](repeating: 0, count: L * D)
        for i in 0..<L {
            var dAllocation: T = 0
            for m in 0..<D {
                dAllocation += dy[i * D + m] * beforeAllocation[i * D + m]
                dBefore[i * D + m] = dy[i * D + m] * sinkAllocation[i]
            }
            // sinkAllocation = sigmoid(conservedSink)
            dConservedSink[i] = dAllocation * sinkAllocation[i] * (1 - sinkAllocation[i])
        }

        // beforeAllocation_i = Σ_{j ≤ i} (q_i·si_i/n_i · k_j) v_j comp_j
        if let chunk {
            // With qs_i = q_i·si_i/n_i and vs_j = v_j·comp_j: the chunked product's gradients,
            // then through the two scalings.
            let qs = (0..<(L * D)).map { q[$0] * sinkIncoming[$0 / D] / normal[$0 / D] }
            let vs = (0..<(L * D)).map { v[$0] * sourceCompetition[$0 / D] }
            let (dQs, dK, dVs) = Self.chunkedCausalProductBackward(
                dOut: dBefore, qs: qs, k: k, vs: vs, L: L, D: D, chunk: chunk)
            for i in 0..<L {
                for d in 0..<D {
                    dq[i * D + d] += dQs[i * D + d] * sinkIncoming[i] / normal[i]
                    dSinkIncoming[i] += dQs[i * D + d] * q[i * D + d] / normal[i]
                    dk[i * D + d] += dK[i * D + d]
                    dv[i * D + d] += dVs[i * D + d] * sourceCompetition[i]
                    dCompetition[i] += dVs[i * D + d] * v[i * D + d]
                }
            }
        } else {
            for i in 0..<L {
                for j in 0...i {
                    var score: T = 0
                    for d in 0..<D { score += q[i * D + d] * (sinkIncoming[i] / normal[i]) * k[j * D + d] }
                    var dScore: T = 0
                    for m in 0..<D {
                        dScore += dBefore[i * D + m] * v[j * D + m] * sourceCompetition[j]
                        dv[j * D + m] += score * dBefore[i * D + m] * sourceCompetition[j]
                        dCompetition[j] += score * dBefore[i * D + m] * v[j * D + m]
                    }
                    for d in 0..<D {
                        dq[i * D + d] += dScore * (sinkIncoming[i] / normal[i]) * k[j * D + d]
                        dSinkIncoming[i] += dScore * q[i * D + d] * k[j * D + d] / normal[i]
                        dk[j * D + d] += dScore * q[i * D + d] * (sinkIncoming[i] / normal[i])
                    }
                }
            }
        }

        // sourceCompetition_i = e_i / Σ_{j ≤ i} e_j · n_i, e = exp(clamp(conservedSourceRaw))
        var dExp = [T](repeating: 0, count: L)
        for i in 0..<L {
            var total: T = 0
            for j in 0...i { total += expSource[j] }
            dExp[i] += dCompetition[i] * normal[i] / total
            let dTotal = -dCompetition[i] * expSource[i] * normal[i] / (total * total)
            for j in 0...i { dExp[j] += dTotal }
        }
        var dConservedSource = [T](repeating: 0, count: L)
        for i in 0..<L where conservedSourceRaw[i] >= -10 && conservedSourceRaw[i] <= 10 {
            dConservedSource[i] = dExp[i] * expSource[i]
        }

        // conservedSink_i = (q_i + eps) · (Σ_{j ≤ i} k_j so_j + eps) / n_i
        // conservedSource_i = (k_i + eps) · (Σ_{j ≤ i} q_j si_j + eps) / n_i
        for i in 0..<L {
            for d in 0..<D {
                var keySum: T = 0
                var querySum: T = 0
                for j in 0...i {
                    keySum += k[j * D + d] * sourceOutgoing[j]
                    querySum += q[j * D + d] * sinkIncoming[j]
                }
                dq[i * D + d] += dConservedSink[i] * (keySum + eps) / normal[i]
                dk[i * D + d] += dConservedSource[i] * (querySum + eps) / normal[i]
                for j in 0...i {
                    let fromSink = dConservedSink[i] * (q[i * D + d] + eps) / normal[i]
                    dk[j * D + d] += fromSink * sourceOutgoing[j]
                    dSourceOutgoing[j] += fromSink * k[j * D + d]
                    let fromSource = dConservedSource[i] * (k[i * D + d] + eps) / normal[i]
                    dq[j * D + d] += fromSource * sinkIncoming[j]
                    dSinkIncoming[j] += fromSource * q[j * D + d]
                }
            }
        }

        // sinkIncoming_i = n_i / ((q_i + eps) · (Σ_{j ≤ i} k_j + eps)), sourceOutgoing likewise
        for i in 0..<L {
            let dDotSink = -dSinkIncoming[i] * sinkIncoming[i] * sinkIncoming[i] / normal[i]
            let dDotSource = -dSourceOutgoing[i] * sourceOutgoing[i] * sourceOutgoing[i] / normal[i]
            for d in 0..<D {
                var keySum: T = 0
                var querySum: T = 0
                for j in 0...i {
                    keySum += k[j * D + d]
                    querySum += q[j * D + d]
                }
                dq[i * D + d] += dDotSink * (keySum + eps)
                dk[i * D + d] += dDotSource * (querySum + eps)
                for j in 0...i {
                    dk[j * D + d] += dDotSink * (q[i * D + d] + eps)
                    dq[j * D + d] += dDotSource * (k[i * D + d] + eps)
                }
            }
        }

        // q = sigmoid(queries), k = sigmoid(keys)
        let dQueries = (0..<(L * D)).map { dq[$0] * q[$0] * (1 - q[$0]) }
        let dKeys = (0..<(L * D)).map { dk[$0] * k[$0] * (1 - k[$0]) }
        return (dQueries, dKeys, dv)
    }

    // MARK: - The chunked causal dot product, literally

    /// For every row i: Σ_d (x[i, d] + eps) · (Σ_{j ≤ i} y[j, d] · w[j] + eps), a row of one
    /// side against the weighted causal sums of the other (the four flows of steps 1 and 2).
    static func causalDots(_ x: [T], against y: [T], weights w: [T], L: Int, D: Int, eps: T) -> [T] {
        (0..<L).map { i in
            var dot: T = 0
            for d in 0..<D {
                var sum: T = 0
                for j in 0...i { sum += y[j * D + d] * w[j] }
                dot += (x[i * D + d] + eps) * (sum + eps)
            }
            return dot
        }
    }

    /// out_i = Σ_{j ≤ i} (qs_i · k_j) vs_j, chunk by chunk: inside a chunk the masked sum over
    /// its own positions, plus qs_i · S, with S = Σ k_j ⊗ vs_j over the earlier chunks.
    static func chunkedCausalProduct(qs: [T], k: [T], vs: [T], L: Int, D: Int, chunk: Int) -> [T] {
        var out = [T](repeating: 0, count: L * D)
        var state = [T](repeating: 0, count: D * D)  // S[a][b] = Σ k_j[a] vs_j[b]
        for c0 in stride(from: 0, to: L, by: chunk) {
            let c1 = min(c0 + chunk, L)
            for i in c0..<c1 {
                for b in 0..<D {
                    var sum: T = 0
                    for a in 0..<D { sum += qs[i * D + a] * state[a * D + b] }
                    out[i * D + b] = sum
                }
                for j in c0...i {
                    var score: T = 0
                    for a in 0..<D { score += qs[i * D + a] * k[j * D + a] }
                    for b in 0..<D { out[i * D + b] += score * vs[j * D + b] }
                }
            }
            for j in c0..<c1 {
                for a in 0..<D { for b in 0..<D { state[a * D + b] += k[j * D + a] * vs[j * D + b] } }
            }
        }
        return out
    }

    /// Gradients of `chunkedCausalProduct` with respect to qs, k and vs, from the last chunk
    /// back, carrying G = d out / d S over the later chunks.
    static func chunkedCausalProductBackward(
        dOut: [T], qs: [T], k: [T], vs: [T], L: Int, D: Int, chunk: Int
    ) -> (qs: [T], k: [T], vs: [T]) {
        var dQs = [T](repeating: 0, count: L * D)
        var dK = [T](repeating: 0, count: L * D)
        var dVs = [T](repeating: 0, count: L * D)
        // The state before each chunk, as the forward pass built it.
        let starts = Array(stride(from: 0, to: L, by: chunk))
        var states: [[T]] = []
        var state = [T](repeating: 0, count: D * D)
        for c0 in starts {
            states.append(state)
            for j in c0..<min(c0 + chunk, L) {
                for a in 0..<D { for b in 0..<D { state[a * D + b] += k[j * D + a] * vs[j * D + b] } }
            }
        }
        var g = [T](repeating: 0, count: D * D)  // d loss / d (state after this chunk)
        for (index, c0) in starts.enumerated().reversed() {
            let c1 = min(c0 + chunk, L)
            let before = states[index]
            for i in c0..<c1 {
                // out_i = qs_i · S_before + Σ_{c0 ≤ j ≤ i} (qs_i · k_j) vs_j
                for a in 0..<D {
                    for b in 0..<D { dQs[i * D + a] += dOut[i * D + b] * before[a * D + b] }
                }
                for j in c0...i {
                    var score: T = 0
                    var dScore: T = 0
                    for a in 0..<D { score += qs[i * D + a] * k[j * D + a] }
                    for b in 0..<D {
                        dScore += dOut[i * D + b] * vs[j * D + b]
                        dVs[j * D + b] += score * dOut[i * D + b]
                    }
                    for a in 0..<D {
                        dQs[i * D + a] += dScore * k[j * D + a]
                        dK[j * D + a] += dScore * qs[i * D + a]
                    }
                }
            }
            // S_after = S_before + Σ_{j in chunk} k_j ⊗ vs_j: its gradient G reaches k and vs.
            for j in c0..<c1 {
                for a in 0..<D {
                    for b in 0..<D {
                        dK[j * D + a] += g[a * D + b] * vs[j * D + b]
                        dVs[j * D + b] += g[a * D + b] * k[j * D + a]
                    }
                }
            }
            // S_before feeds this chunk's outputs (and, through S_after, the later ones).
            for i in c0..<c1 {
                for a in 0..<D { for b in 0..<D { g[a * D + b] += qs[i * D + a] * dOut[i * D + b] } }
            }
        }
        return (dQs, dK, dVs)
    }
}
