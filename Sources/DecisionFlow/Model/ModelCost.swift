/// The floating-point work of one training step (forward, backward), counted analytically:
/// 2 FLOPs per multiply-add of every matrix product, the O(N·C) element-wise work ignored.
///
/// Used by the benchmark to turn milliseconds into FLOP/s, and to time `cblas_sgemm` on the
/// very same shapes for comparison.
public struct ModelCost: Sendable {
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

    /// The products of forward plus backward for `batch` sequences of the full context.
    public init(configuration c: ModelConfiguration, batch B: Int) {
        let T = c.contextLength
        let L = 3 * T
        let N = B * L
        let (C, F, S, A, H, D) = (
            c.embeddingDimension, c.mlpDimension, c.stateDimension, c.actionDimension, c.headCount, c.headDimension
        )
        var tally: [Product: Int] = [:]
        func linear(_ rows: Int, _ inputs: Int, _ outputs: Int, inputGradient: Bool = true) {
            tally[Product(m: rows, n: outputs, k: inputs), default: 0] += 1  // forward
            tally[Product(m: outputs, n: inputs, k: rows), default: 0] += 1  // weight gradient
            if inputGradient { tally[Product(m: rows, n: inputs, k: outputs), default: 0] += 1 }
        }
        linear(B * T, S, C, inputGradient: false)
        linear(B * T, A, C, inputGradient: false)
        for _ in 0..<c.layerCount {
            linear(N, C, 3 * C)
            linear(N, C, C)
            linear(N, C, F)
            linear(N, F, C)
            let pairs = B * H
            switch c.attention {
            case .flow:
                // forward: scores, output; backward: scores again, dScores, gvs, gqs, gk
                tally[Product(m: L, n: L, k: D), default: 0] += 3 * pairs
                tally[Product(m: L, n: D, k: L), default: 0] += 4 * pairs
            case .softmax:
                // forward: scores, output; backward: dv, dScores, dq, dk
                tally[Product(m: L, n: L, k: D), default: 0] += 2 * pairs
                tally[Product(m: L, n: D, k: L), default: 0] += 4 * pairs
            }
        }
        linear(B * T, C, A)
        tally[Product(m: B * T, n: S, k: C), default: 0] += 1
        tally[Product(m: B * T, n: 1, k: C), default: 0] += 1
        products = tally.map { ($0.key, $0.value) }.sorted {
            $0.product.flops * Double($0.count) > $1.product.flops * Double($1.count)
        }
    }
}
