/// The floating-point work of one training step (forward, backward), counted analytically:
/// 2 FLOPs per multiply-add of every matrix product, the O(N·C) element-wise work ignored.
///
/// Used by the benchmark to turn milliseconds into FLOP/s, and to time `cblas_sgemm` on the
/// very same shapes for comparison.
@_spi(Benchmarks) public struct ModelCost: Sendable {
    /// One matrix product: (M × K) · (K × N).
    public struct Product: Sendable, Hashable {
        public var m: Int
        public var n: Int
        public var k: Int
        /// 2·M·N·K.
        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    /// Every matrix product of a training step, with how often it occurs.
    public var products: [(product: Product, count: Int)]

    /// Total FLOPs of a training step.
    public var flops: Double { products.reduce(0) { $0 + $1.product.flops * Double($1.count) } }

    /// The products of a training step's forward plus backward for `batch` sequences of the
    /// full context, as `DecisionTransformer.forward(_:training: true)` runs them: the last
    /// block after attention on state tokens only, no state or return heads, and causal
    /// Flow-Attention in chunks of `flowChunkLength` (default: the model's default).
    public init(configuration c: ModelConfiguration, batch B: Int, flowChunkLength: Int? = nil) {
        let T = c.contextLength
        let L = 3 * T
        let N = B * L
        let (C, F, S, A, H, D) = (
            c.embeddingDimension, c.mlpDimension, c.stateDimension, c.actionDimension, c.headCount, c.headDimension
        )
        var tally: [Product: Int] = [:]
        func product(_ m: Int, _ n: Int, _ k: Int, _ count: Int = 1) {
            tally[Product(m: m, n: n, k: k), default: 0] += count
        }
        func linear(_ rows: Int, _ inputs: Int, _ outputs: Int, inputGradient: Bool = true) {
            product(rows, outputs, inputs)  // forward
            product(outputs, inputs, rows)  // weight gradient
            if inputGradient { product(rows, inputs, outputs) }
        }
        linear(B * T, S, C, inputGradient: false)
        linear(B * T, A, C, inputGradient: false)
        for layer in 0..<c.layerCount {
            // After attention, the last block runs on the B·T state tokens only.
            let rows = layer == c.layerCount - 1 ? B * T : N
            linear(N, C, 3 * C)
            linear(rows, C, C)
            linear(rows, C, F)
            linear(rows, F, C)
            let pairs = B * H
            switch c.attention {
            case .flow:
                let chunk = min(flowChunkLength ?? FlowChunking.defaultLength(tokens: L), L)
                let chunks = FlowChunking.count(L: L, chunk: chunk)
                for index in 0..<chunks {
                    let m = min(chunk, L - index * chunk)
                    // Inside the chunk: forward scores, output; backward scores again, dScores,
                    // gvs, gqs, gk.
                    product(m, m, D, 3 * pairs)
                    product(m, D, m, 4 * pairs)
                    // Across chunks: forward qs·S and S += kᵀ·vs; backward k·G, vs·Gᵀ, go·Sᵀ
                    // and G += qsᵀ·go.
                    if index > 0 { product(m, D, D, 2 * pairs) }  // qs·S, go·Sᵀ
                    if index > 0 { product(D, D, m, pairs) }  // G += qsᵀ·go
                    if index < chunks - 1 {
                        product(D, D, m, pairs)  // S += kᵀ·vs
                        product(m, D, D, 2 * pairs)  // k·G, vs·Gᵀ
                    }
                }
            case .softmax:
                // forward: scores, output; backward: dv, dScores, dq, dk
                product(L, L, D, 2 * pairs)
                product(L, D, L, 4 * pairs)
            }
        }
        linear(B * T, C, A)
        products = tally.map { ($0.key, $0.value) }.sorted {
            $0.product.flops * Double($0.count) > $1.product.flops * Double($1.count)
        }
    }
}
