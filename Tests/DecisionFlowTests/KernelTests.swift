import Foundation
import RealModule
import Testing
import TestSupport

@testable import DecisionFlow

/// Backward kernels against finite differences of a literal forward pass in Double, and
/// each fast kernel against its naive twin on odd shapes (1, 7, 13).
///
/// Tolerances: the analytic gradients are computed in Float, the numeric ones in Double
/// with step 1e-4 (truncation error ~1e-8), so the bound is Float rounding of sums of a few
/// dozen terms: 1e-4 relative plus 1e-5 absolute.
@Suite struct KernelTests {
    /// The vectorized exponential against Double's, across the range the sigmoid sees and
    /// beyond, and the sigmoid built on it against the scalar formula.
    @Test func vectorExpIsAccurate() {
        var results: [Float] = []
        var exact: [Double] = []
        var x: Float = -87
        while x < 88 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.013 })
            let result = vectorExp(lanes)
            for lane in 0..<8 {
                results.append(result[lane])
                exact.append(Foundation.exp(Double(lanes[lane])))
            }
            x += 0.37
        }
        expectClose(results, exact, atol: 0, rtol: 3e-7, "vectorExp")
        var values = (0..<37).map { Float($0) * 0.9 - 16 }
        let expected = values.map { 1 / (1 + Foundation.exp(-Double($0))) }
        values.withUnsafeMutableBufferPointer { vectorSigmoidInPlace($0.baseAddress!, count: $0.count) }
        expectClose(values, expected, atol: 1e-12, rtol: 1e-7, "vectorSigmoidInPlace")
    }

    /// Central differences of `loss` with respect to every element of `input`.
    static func numericGradient(_ input: [Double], h: Double = 1e-4, loss: ([Double]) -> Double) -> [Double] {
        (0..<input.count).map { index in
            var up = input
            up[index] += h
            var down = input
            down[index] -= h
            return (loss(up) - loss(down)) / (2 * h)
        }
    }

    @Test(arguments: [(N: 1, C: 7), (N: 3, C: 13)])
    func layerNormBackwardMatchesFiniteDifferences(N: Int, C: Int) {
        let x = testValues(N * C, seed: 21, scale: 2)
        let weight = testValues(C, seed: 22).map { $0 + 1 }
        let bias = testValues(C, seed: 23)
        let dout = testValues(N * C, seed: 24)
        var dx = [Float](repeating: 0, count: N * C)
        var dweight = [Float](repeating: 0, count: C)
        var dbias = [Float](repeating: 0, count: C)
        var out = [Float](repeating: 0, count: N * C)
        var mean = [Float](repeating: 0, count: N)
        var rstd = [Float](repeating: 0, count: N)
        layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: weight, bias: bias, N: N, C: C, eps: 1e-5)
        let reference = layerNormForwardNaive(
            x.map(Double.init), weight: weight.map(Double.init), bias: bias.map(Double.init), N: N, C: C, eps: 1e-5)
        expectClose(out, reference.map { Float($0) }, atol: 1e-5, rtol: 1e-5, "layer norm forward")
        layerNormBackward(
            dinp: &dx, dweight: &dweight, dbias: &dbias, dout: dout, inp: x, weight: weight, mean: mean, rstd: rstd,
            N: N, C: C)

        let g = dout.map(Double.init)
        let w = weight.map(Double.init)
        let b = bias.map(Double.init)
        let xd = x.map(Double.init)
        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            zip(layerNormForwardNaive(x, weight: w, bias: b, N: N, C: C, eps: 1e-5), g).reduce(0) { $0 + $1.0 * $1.1 }
        }
        expectClose(
            dx, Self.numericGradient(xd) { loss($0, w, b) }.map { Float($0) }, atol: 1e-4, rtol: 1e-3, "layer norm dx")
        expectClose(
            dweight, Self.numericGradient(w) { loss(xd, $0, b) }.map { Float($0) }, atol: 1e-5, rtol: 1e-4,
            "layer norm dweight")
        expectClose(
            dbias, Self.numericGradient(b) { loss(xd, w, $0) }.map { Float($0) }, atol: 1e-5, rtol: 1e-4,
            "layer norm dbias")
    }

    @Test(arguments: Activation.allCases)
    func activationBackwardMatchesFiniteDifferences(kind: Activation) {
        // Keep away from relu's kink at 0, where the derivative is undefined.
        let x = testValues(13, seed: 31, scale: 3).map { abs($0) < 0.01 ? $0 + 0.05 : $0 }
        let dout = testValues(13, seed: 32)
        var out = [Float](repeating: 0, count: 13)
        activationForward(out: &out, inp: x, count: 13, kind: kind)
        expectClose(
            out, x.map { Float(activationNaive(Double($0), kind: kind)) }, atol: 1e-6, rtol: 1e-5, "\(kind) forward")
        var dx = [Float](repeating: 0.5, count: 13)  // backward accumulates
        activationBackward(dinp: &dx, dout: dout, inp: x, count: 13, kind: kind)
        let numeric = Self.numericGradient(x.map(Double.init)) { input in
            zip(input, dout).reduce(0) { $0 + activationNaive($1.0, kind: kind) * Double($1.1) }
        }
        expectClose(dx, numeric.map { Float($0 + 0.5) }, atol: 1e-5, rtol: 1e-4, "\(kind) backward")
    }

    @Test(arguments: [(N: 1, I: 7, O: 13), (N: 7, I: 13, O: 1), (N: 13, I: 1, O: 7)])
    func linearMatchesNaiveAndFiniteDifferences(N: Int, I: Int, O: Int) {
        for layout in [WeightLayout.outIn, .inOut] {
            let x = testValues(N * I, seed: 41)
            let w = testValues(I * O, seed: 42)
            let bias = testValues(O, seed: 43)
            var fast = [Float](repeating: 0, count: N * O)
            var naive = [Float](repeating: 0, count: N * O)
            linearForward(
                out: &fast, ldOut: O, inp: x, ldIn: I, weight: w, bias: bias, layout: layout, N: N, I: I, O: O)
            linearForwardNaive(out: &naive, inp: x, weight: w, bias: bias, layout: layout, N: N, I: I, O: O)
            expectClose(fast, naive, atol: 1e-6, rtol: 1e-5, "linear \(layout) forward")

            let dout = testValues(N * O, seed: 44)
            var dx = [Float](repeating: 0, count: N * I)
            var dw = [Float](repeating: 0, count: I * O)
            var db = [Float](repeating: 0, count: O)
            linearBackward(
                dinp: &dx, ldDinp: I, dweight: &dw, dbias: &db, dout: dout, ldDout: O, inp: x, ldIn: I, weight: w,
                layout: layout, N: N, I: I, O: O)
            func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
                var total = 0.0
                for row in 0..<N {
                    for column in 0..<O {
                        var sum = b[column]
                        for k in 0..<I {
                            sum += x[row * I + k] * (layout == .outIn ? w[column * I + k] : w[k * O + column])
                        }
                        total += sum * Double(dout[row * O + column])
                    }
                }
                return total
            }
            let (xd, wd, bd) = (x.map(Double.init), w.map(Double.init), bias.map(Double.init))
            expectClose(
                dx, Self.numericGradient(xd) { loss($0, wd, bd) }.map { Float($0) }, atol: 1e-5, rtol: 1e-4,
                "linear \(layout) dx")
            expectClose(
                dw, Self.numericGradient(wd) { loss(xd, $0, bd) }.map { Float($0) }, atol: 1e-5, rtol: 1e-4,
                "linear \(layout) dw")
            expectClose(
                db, Self.numericGradient(bd) { loss(xd, wd, $0) }.map { Float($0) }, atol: 1e-5, rtol: 1e-4,
                "linear \(layout) db")
        }
    }

    /// A large product split across two workers equals the single-threaded one up to Float
    /// rounding: edge tiles of a slab can take another kernel path, which sums the K = 129
    /// terms in another order (a few ulps; 1e-5 relative is ~100 ulps).
    @Test func splitProductsEqualTheWholeProduct() {
        let (M, N, K) = (301, 67, 129)
        let a = testValues(M * K, seed: 51)
        let b = testValues(K * N, seed: 52)
        var whole = [Float](repeating: 0, count: M * N)
        var split = [Float](repeating: 0, count: M * N)
        ParallelWork(threadCount: 1).sgemm(
            transA: false, transB: false, M: M, N: N, K: K, alpha: 1, A: a, lda: K, B: b, ldb: N, beta: 0, C: &whole,
            ldc: N)
        ParallelWork(threadCount: 2).sgemm(
            transA: false, transB: false, M: M, N: N, K: K, alpha: 1, A: a, lda: K, B: b, ldb: N, beta: 0, C: &split,
            ldc: N)
        expectClose(split, whole, atol: 1e-6, rtol: 1e-5, "split product")
    }

    /// The naive softmax attention's backward against finite differences, with a padded key.
    @Test func naiveSoftmaxBackwardMatchesFiniteDifferences() {
        let (L, D) = (5, 3)
        let inputs = [testValues(L * D, seed: 61), testValues(L * D, seed: 62), testValues(L * D, seed: 63)].map {
            $0.map(Double.init)
        }
        let mask: [Double] = [1, 1, 1, 0, 0]
        let weights = testValues(L * D, seed: 64).map(Double.init)
        func loss(_ x: [[Double]]) -> Double {
            zip(
                NaiveSoftmaxAttention(queries: x[0], keys: x[1], values: x[2], keyMask: mask, L: L, D: D).output,
                weights
            ).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let analytic = NaiveSoftmaxAttention(
            queries: inputs[0], keys: inputs[1], values: inputs[2], keyMask: mask, L: L, D: D
        ).backward(outputGradient: weights)
        for (which, gradient) in [analytic.queries, analytic.keys, analytic.values].enumerated() {
            let numeric = (0..<(L * D)).map {
                FlowAttentionKernelTests.finiteDifference(inputs, which: which, index: $0, h: 1e-6, loss: loss)
            }
            expectClose(gradient, numeric, atol: 1e-7, rtol: 1e-5, "softmax input \(which) against finite differences")
        }
    }

    /// The fast softmax kernel against the naive one on odd shapes, with padding at the end.
    @Test(arguments: [(L: 1, D: 1), (L: 7, D: 3), (L: 13, D: 5)])
    func fastSoftmaxMatchesNaive(L: Int, D: Int) {
        let ld = 3 * D
        let qkv = testValues(L * ld, seed: UInt64(L * 7 + D), scale: 2)
        let pick = { (part: Int) in (0..<(L * D)).map { qkv[($0 / D) * ld + part * D + $0 % D] } }
        let mask = (0..<L).map { $0 < L - L / 3 ? Float(1) : 0 }
        let dyContiguous = testValues(L * D, seed: 65)
        let naive = NaiveSoftmaxAttention(queries: pick(0), keys: pick(1), values: pick(2), keyMask: mask, L: L, D: D)
        let naiveGradients = naive.backward(outputGradient: dyContiguous)

        var y = [Float](repeating: 0, count: L * D)
        var probabilities = [Float](repeating: 0, count: L * L)
        let ones = [Float](repeating: 1, count: L * L)
        var scratch = [Float](repeating: 0, count: 2 * L * L)
        var dqkv = [Float](repeating: 0, count: L * ld)
        softmaxAttentionForward(
            y: &y, ldY: D, probabilities: &probabilities, dropMask: ones, dropped: &scratch, q: qkv,
            k: Array(qkv.dropFirst(D)),
            v: Array(qkv.dropFirst(2 * D)), ldQKV: ld, keyMask: mask, L: L, D: D)
        expectClose(y, naive.output, atol: 1e-5, rtol: 1e-4, "softmax y")
        qkv.withUnsafeBufferPointer { q in
            dqkv.withUnsafeMutableBufferPointer { d in
                softmaxAttentionBackward(
                    dq: d.baseAddress!, dk: d.baseAddress! + D, dv: d.baseAddress! + 2 * D, ldD: ld, dy: dyContiguous,
                    ldY: D,
                    probabilities: probabilities, dropMask: ones, q: q.baseAddress!, k: q.baseAddress! + D,
                    v: q.baseAddress! + 2 * D,
                    ldQKV: ld, L: L, D: D, scratch: &scratch)
            }
        }
        let gradient = { (part: Int) in (0..<(L * D)).map { dqkv[($0 / D) * ld + part * D + $0 % D] } }
        expectClose(gradient(0), naiveGradients.queries, atol: 1e-5, rtol: 1e-4, "softmax dq")
        expectClose(gradient(1), naiveGradients.keys, atol: 1e-5, rtol: 1e-4, "softmax dk")
        expectClose(gradient(2), naiveGradients.values, atol: 1e-5, rtol: 1e-4, "softmax dv")
    }
}

@Suite struct DeterminismTests {
    /// The same seed and thread count give the same training losses, bit for bit, with
    /// dropout on, for both attention kinds.
    @Test(arguments: AttentionKind.allCases)
    func twentyStepsRepeatBitForBit(attention: AttentionKind) {
        func losses() -> [Float] {
            let (model, batch) = smallModelAndBatch(attention: attention, seed: 9)
            var optimizer = AdamW(layout: model.layout)
            return (0..<20).map { _ in
                let loss = model.forward(batch, training: true)
                model.backward(batch)
                clipGradientNorm(of: model, maxNorm: 0.25)
                optimizer.update(model, learningRate: 1e-3)
                return loss
            }
        }
        let first = losses()
        let second = losses()
        #expect(first.map(\.bitPattern) == second.map(\.bitPattern))
        #expect(first.last! < first.first!, "training moves the loss: \(first)")
        #expect(Set(first).count > 1)
    }
}
