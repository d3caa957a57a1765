import RealModule
import Testing

@testable import DecisionFlow

/// Deterministic test inputs: uniform in [−scale, scale).
func testValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var generator = RandomGenerator(seed: seed)
    return (0..<count).map { _ in (generator.nextFloat() * 2 - 1) * scale }
}

/// |a − b| ≤ atol + rtol·|b| for every element; records the worst offender.
func expectClose(
    _ actual: [Float], _ expected: [Float], atol: Float, rtol: Float, _ label: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        actual.count == expected.count, "\(label): \(actual.count) vs \(expected.count) values",
        sourceLocation: sourceLocation)
    var worst: (index: Int, excess: Float) = (-1, 0)
    for index in 0..<min(actual.count, expected.count) {
        let error = abs(actual[index] - expected[index])
        let allowed = atol + rtol * abs(expected[index])
        if !(error <= allowed), error - allowed >= worst.excess { worst = (index, error - allowed) }
    }
    if worst.index >= 0 {
        let i = worst.index
        Issue.record(
            "\(label): element \(i) is \(actual[i]), expected \(expected[i]) (atol \(atol), rtol \(rtol))",
            sourceLocation: sourceLocation)
    }
}

@Suite struct FlowAttentionKernelTests {
    /// Central finite difference of `loss` with respect to `inputs[which][index]`.
    static func finiteDifference(
        _ inputs: [[Double]], which: Int, index: Int, h: Double, loss: ([[Double]]) -> Double
    ) -> Double {
        var up = inputs
        up[which][index] += h
        var down = inputs
        down[which][index] -= h
        return (loss(up) - loss(down)) / (2 * h)
    }

    /// Checks the naive backward pass against finite differences of its forward pass, in
    /// Double. The loss is Σ output · weights. Inputs are [queries, keys, values].
    static func checkNaiveBackward(
        _ inputs: [[Double]], L: Int, D: Int, h: Double, atol: Double, rtol: Double, paddedTail: Int = 0
    ) {
        // Padded positions (right padding, as the reference trains) carry no loss weight.
        let weights = testValues(L * D, seed: 4).enumerated().map {
            $0.offset / D >= L - paddedTail ? 0 : Double($0.element)
        }
        func loss(_ x: [[Double]]) -> Double {
            let attention = NaiveFlowAttention(queries: x[0], keys: x[1], values: x[2], L: L, D: D, eps: 1e-6)
            return zip(attention.output, weights).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let attention = NaiveFlowAttention(
            queries: inputs[0], keys: inputs[1], values: inputs[2], L: L, D: D, eps: 1e-6)
        let gradients = attention.backward(outputGradient: weights)
        let analytic = [gradients.queries, gradients.keys, gradients.values]
        for which in 0..<3 {
            for index in 0..<(L * D) {
                let numeric = finiteDifference(inputs, which: which, index: index, h: h, loss: loss)
                #expect(
                    abs(numeric - analytic[which][index]) <= atol + rtol * abs(numeric),
                    "input \(which) element \(index): \(analytic[which][index]) vs \(numeric)")
            }
        }
    }

    /// The naive backward pass against central finite differences, in Double, on tiny shapes.
    @Test(arguments: [(L: 4, D: 3, scale: 1.0), (L: 5, D: 2, scale: 6.0)])
    func naiveBackwardMatchesFiniteDifferences(L: Int, D: Int, scale: Double) {
        let inputs = [
            testValues(L * D, seed: 1).map { Double($0) * scale },
            testValues(L * D, seed: 2).map { Double($0) * scale },
            testValues(L * D, seed: 3).map { Double($0) },
        ]
        // Central differences in Double are good to about h² and 1e-16/h.
        Self.checkNaiveBackward(inputs, L: L, D: D, h: 1e-6, atol: 1e-7, rtol: 1e-5)
    }

    /// With the last positions padded: they get no loss weight, yet their inputs still
    /// receive gradient only through the causal sums they take part in (none, here: the
    /// padding is at the end, and no real position looks ahead).
    @Test func naiveBackwardWithAPaddedTail() {
        let (L, D) = (7, 3)
        let inputs = [testValues(L * D, seed: 7), testValues(L * D, seed: 8), testValues(L * D, seed: 9)].map {
            $0.map(Double.init)
        }
        Self.checkNaiveBackward(inputs, L: L, D: D, h: 1e-6, atol: 1e-7, rtol: 1e-5, paddedTail: 3)
        let attention = NaiveFlowAttention(
            queries: inputs[0], keys: inputs[1], values: inputs[2], L: L, D: D, eps: 1e-6)
        let weights = (0..<(L * D)).map { $0 / D >= L - 3 ? 0.0 : 1.0 }
        let gradients = attention.backward(outputGradient: weights)
        // Causality: padded inputs at the end cannot influence earlier outputs.
        for index in ((L - 3) * D)..<(L * D) {
            #expect(
                abs(gradients.queries[index]) < 1e-12 && abs(gradients.keys[index]) < 1e-12
                    && abs(gradients.values[index]) < 1e-12)
        }
    }

    /// The same check where the conserved source is clamped at some positions, so the clamp's
    /// zero gradient is exercised.
    @Test func naiveBackwardThroughTheClamp() {
        let L = 6
        let D = 2
        // Keys near 0 at the first three positions make sinkIncoming (and so Σ q·si) huge; when
        // keys near 1 follow, the conserved source leaves [−10, 10] at the later positions.
        let queries = (0..<(L * D)).map { $0 % D == 0 ? 6.0 : -8.0 }
        let keys = (0..<(L * D)).map { $0 % D == 0 && $0 / D >= 3 ? 6.0 : -14.0 }
        let values = testValues(L * D, seed: 5).map { Double($0) }
        let attention = NaiveFlowAttention(queries: queries, keys: keys, values: values, L: L, D: D, eps: 1e-6)
        let clamped = attention.conservedSourceRaw.filter { $0 > 10 || $0 < -10 }.count
        #expect(clamped > 0 && clamped < L, "the inputs must clamp some positions: \(attention.conservedSourceRaw)")
        // The values here span many orders of magnitude: a smaller step, a looser bound.
        Self.checkNaiveBackward([queries, keys, values], L: L, D: D, h: 1e-7, atol: 1e-6, rtol: 1e-4)
    }

    /// The fast kernel (running sums, masked L×L sgemm) against the naive one, on odd shapes,
    /// reading from a strided (L, 3C) buffer as the model does.
    @Test(arguments: [(L: 1, D: 1), (L: 7, D: 3), (L: 13, D: 5), (L: 60, D: 16)])
    func fastMatchesNaive(L: Int, D: Int) {
        let C = D * 2  // two heads; test head 1 so column offsets matter
        let head = 1
        let ld = 3 * C
        var qkv = testValues(L * ld, seed: UInt64(L * 100 + D), scale: 2)
        let column = { (part: Int, i: Int, d: Int) in i * ld + part * C + head * D + d }
        let queries = (0..<(L * D)).map { qkv[column(0, $0 / D, $0 % D)] }
        let keys = (0..<(L * D)).map { qkv[column(1, $0 / D, $0 % D)] }
        let values = (0..<(L * D)).map { qkv[column(2, $0 / D, $0 % D)] }
        let dyContiguous = testValues(L * D, seed: 77)
        let naive = NaiveFlowAttention(queries: queries, keys: keys, values: values, L: L, D: D, eps: Float(1e-6))
        let naiveGradients = naive.backward(outputGradient: dyContiguous)

        let scratch = FlowAttentionScratch(L: L, D: D)
        var y = [Float](repeating: 0, count: L * C)
        var before = [Float](repeating: 0, count: L * C)
        var cache = [Float](repeating: 0, count: L * FlowCache.width)
        var dqkv = [Float](repeating: 0, count: L * ld)
        var dy = [Float](repeating: 0, count: L * C)
        for i in 0..<L { for d in 0..<D { dy[i * C + head * D + d] = dyContiguous[i * D + d] } }
        let qkvBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: qkv.count)
        _ = qkvBuffer.initialize(from: qkv)
        let yBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: y.count)
        yBuffer.initialize(repeating: 0)
        let beforeBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: before.count)
        beforeBuffer.initialize(repeating: 0)
        let cacheBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: cache.count)
        cacheBuffer.initialize(repeating: 0)
        let dqkvBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: dqkv.count)
        dqkvBuffer.initialize(repeating: 0)
        let dyBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: dy.count)
        _ = dyBuffer.initialize(from: dy)
        defer { [qkvBuffer, yBuffer, beforeBuffer, cacheBuffer, dqkvBuffer, dyBuffer].forEach { $0.deallocate() } }
        let base = qkvBuffer.baseAddress! + head * D
        let dbase = dqkvBuffer.baseAddress! + head * D
        flowAttentionForward(
            y: yBuffer.baseAddress! + head * D, ldY: C, beforeAllocation: beforeBuffer.baseAddress! + head * D, ldB: C,
            cache: cacheBuffer.baseAddress!, q: base, k: base + C, v: base + 2 * C, ldQKV: ld, L: L, D: D, eps: 1e-6,
            scratch: scratch)
        flowAttentionBackward(
            dq: dbase, dk: dbase + C, dv: dbase + 2 * C, ldD: ld, dy: dyBuffer.baseAddress! + head * D, ldY: C,
            beforeAllocation: beforeBuffer.baseAddress! + head * D, ldB: C, cache: cacheBuffer.baseAddress!, q: base,
            k: base + C, v: base + 2 * C, ldQKV: ld, L: L, D: D, eps: 1e-6, scratch: scratch)
        y = Array(yBuffer)
        dqkv = Array(dqkvBuffer)
        _ = (before, cache)
        let fastY = (0..<(L * D)).map { y[($0 / D) * C + head * D + $0 % D] }
        // Float sums in a different order: a few ulps of the largest terms.
        expectClose(fastY, naive.output, atol: 1e-5, rtol: 1e-4, "y L\(L) D\(D)")
        let pick = { (part: Int) in (0..<(L * D)).map { dqkv[column(part, $0 / D, $0 % D)] } }
        expectClose(pick(0), naiveGradients.queries, atol: 1e-5, rtol: 1e-3, "dq L\(L) D\(D)")
        expectClose(pick(1), naiveGradients.keys, atol: 1e-5, rtol: 1e-3, "dk L\(L) D\(D)")
        expectClose(pick(2), naiveGradients.values, atol: 1e-5, rtol: 1e-4, "dv L\(L) D\(D)")
        // The other head's columns are untouched.
        #expect((0..<L).allSatisfy { i in (0..<D).allSatisfy { dqkv[i * ld + $0] == 0 && y[i * C + $0] == 0 } })
    }
}
