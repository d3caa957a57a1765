import RealModule

#if canImport(Glibc)
    import Glibc
#endif

// Element-wise kernels over `count` values.

/// out = act(inp). Caches nothing: backward reads `inp` (the pre-activation).
func activationForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, kind: Activation) {
    switch kind {
    case .relu:
        // Explicit SIMD: the compiler cannot rule out that `out` aliases `inp`.
        var i = 0
        while i + 8 <= count {
            let x = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: x.replacing(with: 0, where: x .< 0), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            out[i] = max(inp[i], 0)
            i += 1
        }
    case .gelu:
        // GPT-2's gelu_new, the tanh approximation.
        let scale: Float = (2 / Float.pi).squareRoot()
        for i in 0..<count {
            let x = inp[i]
            out[i] = 0.5 * x * (1 + tanhf(scale * (x + 0.044715 * x * x * x)))
        }
    }
}

/// dinp += dout · act'(inp).
func activationBackward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, count: Int,
    kind: Activation, accumulate: Bool = true
) {
    // Writing (accumulate false) adds to zero instead of to dinp's contents: the same result
    // as zeroing dinp first, without the pass that zeroes it.
    switch kind {
    case .relu:
        // PyTorch's relu passes no gradient at exactly 0. Explicit SIMD: the compiler cannot
        // rule out that `dinp` aliases the inputs, so it would not vectorize the loop.
        var i = 0
        while i + 8 <= count {
            let x = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD8<Float>.self)
            let g = UnsafeRawPointer(dout + i).loadUnaligned(as: SIMD8<Float>.self)
            let previous = accumulate ? UnsafeRawPointer(dinp + i).loadUnaligned(as: SIMD8<Float>.self) : SIMD8()
            let sum = previous + g.replacing(with: 0, where: x .<= 0)
            UnsafeMutableRawPointer(dinp + i).storeBytes(of: sum, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            dinp[i] = (accumulate ? dinp[i] : 0) + (inp[i] > 0 ? dout[i] : 0)
            i += 1
        }
    case .gelu:
        let scale: Float = (2 / Float.pi).squareRoot()
        for i in 0..<count {
            let x = inp[i]
            let inner = scale * (x + 0.044715 * x * x * x)
            let t = tanhf(inner)
            let dInner = scale * (1 + 3 * 0.044715 * x * x)
            dinp[i] = (accumulate ? dinp[i] : 0) + dout[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner)
        }
    }
}

/// Values per chunk of the parallel element-wise passes.
let elementwiseChunk = 32_768

/// Arguments of the parallel element-wise activation passes.
private struct ActivationChunks {
    var out: UnsafeMutablePointer<Float>
    var dout: UnsafePointer<Float>?
    var inp: UnsafePointer<Float>
    var count: Int
    var kind: Activation
    var accumulate = true
}

/// `activationForward` in parallel chunks.
func activationForward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, kind: Activation, work: ParallelWork
) {
    let arguments = ActivationChunks(out: out, dout: nil, inp: inp, count: count, kind: kind)
    work.forEach((count + elementwiseChunk - 1) / elementwiseChunk, arguments) { raw, chunk, _ in
        let a = raw.assumingMemoryBound(to: ActivationChunks.self).pointee
        let first = chunk * elementwiseChunk
        activationForward(
            out: a.out + first, inp: a.inp + first, count: min(elementwiseChunk, a.count - first), kind: a.kind)
    }
}

/// `activationBackward` in parallel chunks (`dinp` += ...).
func activationBackward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, count: Int,
    kind: Activation, accumulate: Bool = true, work: ParallelWork
) {
    let arguments = ActivationChunks(
        out: dinp, dout: dout, inp: inp, count: count, kind: kind, accumulate: accumulate)
    work.forEach((count + elementwiseChunk - 1) / elementwiseChunk, arguments) { raw, chunk, _ in
        let a = raw.assumingMemoryBound(to: ActivationChunks.self).pointee
        guard let dout = a.dout else { return }
        let first = chunk * elementwiseChunk
        activationBackward(
            dinp: a.out + first, dout: dout + first, inp: a.inp + first, count: min(elementwiseChunk, a.count - first),
            kind: a.kind, accumulate: a.accumulate)
    }
}

/// Inverted dropout: out = inp · mask, where mask is 0 with probability p and 1/(1−p)
/// otherwise. Writes the mask (the multiplier) for the backward pass; see `dropoutMask`.
func dropoutForward(
    out: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int,
    probability: Float, generator: inout RandomGenerator, work: ParallelWork
) {
    dropoutMask(mask, count: count, probability: probability, generator: &generator, work: work)
    for i in 0..<count { out[i] = inp[i] * mask[i] }
}

/// Draws inverted-dropout multipliers: 0 with probability p, 1/(1−p) otherwise (all ones,
/// without touching the generator, when p = 0).
///
/// One draw from `generator` seeds the call; each chunk of `dropoutChunk` values then has its
/// own generator seeded from (that draw, chunk index). Chunks fill in parallel, and the mask
/// is the same for any number of workers.
func dropoutMask(
    _ mask: UnsafeMutablePointer<Float>, count: Int, probability: Float, generator: inout RandomGenerator,
    work: ParallelWork
) {
    guard probability > 0 else {
        mask.update(repeating: 1, count: count)
        return
    }
    let arguments = DropoutChunks(
        mask: mask, count: count, probability: probability, keep: 1 / (1 - probability), seed: generator.next())
    work.forEach((count + dropoutChunk - 1) / dropoutChunk, arguments) { raw, chunk, _ in
        let a = raw.assumingMemoryBound(to: DropoutChunks.self).pointee
        var local = RandomGenerator(seed: a.seed &+ UInt64(chunk) &* 0xD1B5_4A32_D192_ED03)
        for i in (chunk * dropoutChunk)..<min(a.count, (chunk + 1) * dropoutChunk) {
            a.mask[i] = local.nextFloat() < a.probability ? 0 : a.keep
        }
    }
}

/// Arguments of the parallel dropout-mask fill.
private struct DropoutChunks {
    var mask: UnsafeMutablePointer<Float>
    var count: Int
    var probability: Float
    var keep: Float
    var seed: UInt64
}

/// Values per independently seeded dropout chunk.
let dropoutChunk = 16_384

/// The literal activation, generic over the floating-point type, for tests.
func activationNaive<T: Real>(_ x: T, kind: Activation) -> T {
    switch kind {
    case .relu: return max(x, 0)
    case .gelu:
        let scale: T = (2 / T.pi).squareRoot()
        let cubic: T = T(44_715) / T(1_000_000) * x * x * x
        let inner: T = scale * (x + cubic)
        return x / 2 * (1 + T.tanh(inner))
    }
}
