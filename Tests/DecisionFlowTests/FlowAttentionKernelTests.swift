import RealModule
import TestSupport
import Testing

@testable import DecisionFlow

/// Deterministic test inputs: uniform in [−scale, scale).
func testValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var generator = RandomGenerator(seed: seed)
    return (0..<count).map { _ in (generator.nextFloat() * 2 - 1) * scale }
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
        _ inputs: [[Double]], L: Int, D: Int, h: Double, atol: Double, rtol: Double, paddedTail: Int = 0,
        chunk: Int? = nil
    ) {
        // Padded positions (right padding, as the reference trains) carry no loss weight.
        let weights = testValues(L * D, seed: 4).enumerated().map {
            $0.offset / D >= L - paddedTail ? 0 : Double($0.element)
        }
        func loss(_ x: [[Double]]) -> Double {
            let attention = NaiveFlowAttention(
                queries: x[0], keys: x[1], values: x[2], L: L, D: D, eps: 1e-6, chunk: chunk)
            return zip(attention.output, weights).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let attention = NaiveFlowAttention(
            queries: inputs[0], keys: inputs[1], values: inputs[2], L: L, D: D, eps: 1e-6, chunk: chunk)
        let gradients = attention.backward(outputGradient: weights)
        let analytic = [gradients.queries, gradients.keys, gradients.values]
        for which in 0..<3 {
            let numeric = (0..<(L * D)).map { finiteDifference(inputs, which: which, index: $0, h: h, loss: loss) }
            expectClose(analytic[which], numeric, atol: atol, rtol: rtol, "input \(which) against finite differences")
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
        let zeros = [Double](repeating: 0, count: 3 * D)
        for (name, gradient) in [("queries", gradients.queries), ("keys", gradients.keys), ("values", gradients.values)] {
            expectClose(gradient[((L - 3) * D)...], zeros, atol: 1e-12, rtol: 0, "padded \(name) gradient")
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
        // And with the causal dot product in chunks of 2: three chunk boundaries, some of the
        // clamped positions after them.
        Self.checkNaiveBackward([queries, keys, values], L: L, D: D, h: 1e-7, atol: 1e-6, rtol: 1e-4, chunk: 2)
    }

    /// The chunked scheme (a D×D state carried across chunks, and its gradient carried back)
    /// against finite differences in Double, with boundaries inside and at the end, and a
    /// padded tail that straddles a boundary.
    @Test(arguments: [(L: 7, D: 3, chunk: 3), (L: 8, D: 2, chunk: 4), (L: 5, D: 2, chunk: 1)])
    func chunkedSchemeMatchesFiniteDifferences(L: Int, D: Int, chunk: Int) {
        let inputs = [testValues(L * D, seed: 11), testValues(L * D, seed: 12), testValues(L * D, seed: 13)].map {
            $0.map { Double($0) * 2 }
        }
        Self.checkNaiveBackward(inputs, L: L, D: D, h: 1e-6, atol: 1e-7, rtol: 1e-5, chunk: chunk)
        Self.checkNaiveBackward(inputs, L: L, D: D, h: 1e-6, atol: 1e-7, rtol: 1e-5, paddedTail: 2, chunk: chunk)
        // And it computes what the literal causal sum computes.
        let whole = NaiveFlowAttention(queries: inputs[0], keys: inputs[1], values: inputs[2], L: L, D: D, eps: 1e-6)
        let chunked = NaiveFlowAttention(
            queries: inputs[0], keys: inputs[1], values: inputs[2], L: L, D: D, eps: 1e-6, chunk: chunk)
        expectClose(chunked.output, whole.output, atol: 1e-12, rtol: 1e-12, "chunked against whole")
    }

    /// Runs the fast kernel on head 1 of a two-head (L, 3C) buffer, as the model lays it out,
    /// with chunks of `chunk` positions; returns the head's output and the whole gradient.
    /// With `parallel`, the chunks of the pair run on two workers (`FlowChunkWork`).
    static func runFast(qkv: [Float], dy: [Float], L: Int, D: Int, chunk: Int, parallel: Bool = false) -> (
        y: [Float], dqkv: [Float]
    ) {
        let C = D * 2
        let head = 1
        let ld = 3 * C
        let scratch = FlowAttentionScratch(L: L, D: D, chunk: chunk)
        let chunkWork =
            parallel
            ? FlowChunkWork(work: ParallelWork(threadCount: 2), scratches: [scratch, FlowAttentionScratch(L: L, D: D, chunk: chunk)])
            : nil
        var qkv = qkv
        var y = [Float](repeating: 0, count: L * C)
        var before = [Float](repeating: 0, count: L * C)
        var cache = [Float](repeating: .nan, count: FlowCache.count(L: L, D: D, chunk: scratch.chunk))
        var dqkv = [Float](repeating: 0, count: L * ld)
        var dyFull = [Float](repeating: 0, count: L * C)
        for i in 0..<L { for d in 0..<D { dyFull[i * C + head * D + d] = dy[i * D + d] } }
        let dyBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: dyFull.count)
        _ = dyBuffer.initialize(from: dyFull)
        defer { dyBuffer.deallocate() }
        let dyBase = UnsafePointer(dyBuffer.baseAddress!)
        qkv.withUnsafeMutableBufferPointer { qkv in
            let base = qkv.baseAddress! + head * D
            y.withUnsafeMutableBufferPointer { y in
                before.withUnsafeMutableBufferPointer { before in
                    cache.withUnsafeMutableBufferPointer { cache in
                        dqkv.withUnsafeMutableBufferPointer { dqkv in
                            let dbase = dqkv.baseAddress! + head * D
                            flowAttentionForward(
                                y: y.baseAddress! + head * D, ldY: C, beforeAllocation: before.baseAddress! + head * D,
                                ldB: C, cache: cache.baseAddress!, q: base, k: base + C, v: base + 2 * C, ldQKV: ld,
                                L: L, D: D, eps: 1e-6, scratch: scratch, chunkWork: chunkWork)
                            flowAttentionBackward(
                                dq: dbase, dk: dbase + C, dv: dbase + 2 * C, ldD: ld, dy: dyBase + head * D, ldY: C,
                                beforeAllocation: before.baseAddress! + head * D, ldB: C, cache: cache.baseAddress!,
                                q: base, k: base + C, v: base + 2 * C, ldQKV: ld, L: L, D: D, eps: 1e-6,
                                scratch: scratch, chunkWork: chunkWork)
                        }
                    }
                }
            }
        }
        // The other head's columns are untouched.
        #expect((0..<L).allSatisfy { i in (0..<D).allSatisfy { dqkv[i * ld + $0] == 0 && y[i * C + $0] == 0 } })
        return ((0..<(L * D)).map { y[($0 / D) * C + head * D + $0 % D] }, dqkv)
    }

    /// The fast kernel, chunked (on one worker, and with its chunks spread over two) and as
    /// one masked L×L block (chunk ≥ L: the kernel before chunking), against the naive one on odd shapes around the chunk length: L = 1, 7,
    /// c − 1, c, c + 1 and 3c + 5, forward and backward.
    @Test(arguments: [(D: 3, chunk: 4), (D: 5, chunk: 7), (D: 16, chunk: 16), (D: 8, chunk: 64)])
    func fastMatchesNaive(D: Int, chunk: Int) {
        let C = D * 2
        let head = 1
        let ld = 3 * C
        for L in Set([1, 7, chunk - 1, chunk, chunk + 1, 3 * chunk + 5]).sorted() where L >= 1 {
            let qkv = testValues(L * ld, seed: UInt64(L * 100 + D), scale: 2)
            let column = { (part: Int, i: Int, d: Int) in i * ld + part * C + head * D + d }
            let pick = { (buffer: [Float], part: Int) in (0..<(L * D)).map { buffer[column(part, $0 / D, $0 % D)] } }
            let dy = testValues(L * D, seed: 77)
            let naive = NaiveFlowAttention(
                queries: pick(qkv, 0), keys: pick(qkv, 1), values: pick(qkv, 2), L: L, D: D, eps: Float(1e-6))
            let naiveGradients = naive.backward(outputGradient: dy)
            let chunked = Self.runFast(qkv: qkv, dy: dy, L: L, D: D, chunk: chunk)
            let masked = Self.runFast(qkv: qkv, dy: dy, L: L, D: D, chunk: L)
            let parallel = Self.runFast(qkv: qkv, dy: dy, L: L, D: D, chunk: chunk, parallel: true)
            for (name, fast) in [("chunked", chunked), ("masked", masked), ("chunk-parallel", parallel)] {
                let label = "\(name) L\(L) D\(D) c\(chunk)"
                // Float sums in a different order: a few ulps of the largest terms.
                expectClose(fast.y, naive.output, atol: 1e-5, rtol: 1e-4, "y \(label)")
                expectClose(pick(fast.dqkv, 0), naiveGradients.queries, atol: 1e-5, rtol: 1e-3, "dq \(label)")
                expectClose(pick(fast.dqkv, 1), naiveGradients.keys, atol: 1e-5, rtol: 1e-3, "dk \(label)")
                expectClose(pick(fast.dqkv, 2), naiveGradients.values, atol: 1e-5, rtol: 1e-4, "dv \(label)")
            }
        }
    }

    /// A running state carried between calls gives what one call over the whole sequence
    /// gives: the sequence fed in pieces of 1 to 5 rows, each piece folding all its rows but
    /// (as a policy does) its last, which the next piece then feeds again.
    @Test func carriedStateContinuesASequence() {
        let (L, D, chunk) = (23, 4, 4)
        let ld = 3 * D
        let qkv = testValues(L * ld, seed: 5, scale: 2)
        // One head, contiguous (L, 3D) rows.
        func forward(rows: Range<Int>, state: UnsafeMutablePointer<Float>?, committed: Int?) -> [Float] {
            var part = Array(qkv[(rows.lowerBound * ld)..<(rows.upperBound * ld)])
            let n = rows.count
            var y = [Float](repeating: 0, count: n * D)
            var before = [Float](repeating: 0, count: n * D)
            let scratch = FlowAttentionScratch(L: n, D: D, chunk: chunk)
            var cache = [Float](repeating: 0, count: FlowCache.count(L: n, D: D, chunk: scratch.chunk))
            part.withUnsafeMutableBufferPointer { part in
                let q = part.baseAddress!
                flowAttentionForward(
                    y: &y, ldY: D, beforeAllocation: &before, ldB: D, cache: &cache, q: q, k: q + D, v: q + 2 * D,
                    ldQKV: ld, L: n, D: D, eps: 1e-6, scratch: scratch, state: state, committedRows: committed)
            }
            return y
        }
        let reference = forward(rows: 0..<L, state: nil, committed: nil)
        let state = UnsafeMutablePointer<Float>.allocate(capacity: FlowState.count(D: D))
        defer { state.deallocate() }
        FlowState.clear(state, D: D)
        var start = 0
        var size = 1
        while start < L - 1 {
            let end = min(L, start + size + 1)
            let y = forward(rows: start..<end, state: state, committed: end - start - 1)
            expectClose(y, Array(reference[(start * D)..<(end * D)]), atol: 1e-6, rtol: 1e-5, "rows \(start)..<\(end)")
            #expect(Int(FlowState.positions(state, D: D).pointee) == end - 1)
            start = end - 1
            size = size % 5 + 1
        }
    }
}
