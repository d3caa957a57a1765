import RealModule

/// The literal causal softmax attention of one (batch, head) pair, without dropout: every
/// score, weight and sum its own loop. Generic over the floating-point type so tests can run
/// finite differences in Double; tests compare the fast kernel against it.
struct NaiveSoftmaxAttention<T: Real> {
    let L: Int
    let D: Int
    let q: [T]
    let k: [T]
    let v: [T]
    /// (L, L) softmax weights.
    var probabilities: [T]
    /// (L, D).
    var output: [T]

    init(queries: [T], keys: [T], values: [T], keyMask: [T], L: Int, D: Int) {
        self.L = L
        self.D = D
        q = queries
        k = keys
        v = values
        let scale = 1 / T(D).squareRoot()
        var probabilities = [T](repeating: 0, count: L * L)
        for i in 0..<L {
            var scores = [T](repeating: 0, count: L)
            for j in 0..<L {
                var dot: T = 0
                for d in 0..<D { dot += queries[i * D + d] * keys[j * D + d] }
                scores[j] = (j > i ? -10_000 : dot * scale) + (1 - keyMask[j]) * -10_000
            }
            let maximum = scores.max() ?? 0
            let exponentials = scores.map { T.exp($0 - maximum) }
            let total = exponentials.reduce(0, +)
            for j in 0..<L { probabilities[i * L + j] = exponentials[j] / total }
        }
        var output = [T](repeating: 0, count: L * D)
        for i in 0..<L {
            for j in 0..<L {
                for d in 0..<D { output[i * D + d] += probabilities[i * L + j] * values[j * D + d] }
            }
        }
        self.probabilities = probabilities
        self.output = output
    }

    /// Gradients with respect to queries, keys and values, given the output's gradient.
    func backward(outputGradient dy: [T]) -> (queries: [T], keys: [T], values: [T]) {
        let scale = 1 / T(D).squareRoot()
        var dq = [T](repeating: 0, count: L * D)
        var dk = [T](repeating: 0, count: L * D)
        var dv = [T](repeating: 0, count: L * D)
        for i in 0..<L {
            // output_i = Σ_j p_ij v_j
            var dp = [T](repeating: 0, count: L)
            for j in 0..<L {
                for d in 0..<D {
                    dp[j] += dy[i * D + d] * v[j * D + d]
                    dv[j * D + d] += probabilities[i * L + j] * dy[i * D + d]
                }
            }
            // p_i = softmax(w_i); w_ij = q_i·k_j·scale for j ≤ i, a constant otherwise
            var weighted: T = 0
            for j in 0..<L { weighted += dp[j] * probabilities[i * L + j] }
            for j in 0...i {
                let dw = probabilities[i * L + j] * (dp[j] - weighted) * scale
                for d in 0..<D {
                    dq[i * D + d] += dw * k[j * D + d]
                    dk[j * D + d] += dw * q[i * D + d]
                }
            }
        }
        return (dq, dk, dv)
    }
}
