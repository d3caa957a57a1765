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
    kind: Activation
) {
    switch kind {
    case .relu:
        // PyTorch's relu passes no gradient at exactly 0. Explicit SIMD: the compiler cannot
        // rule out that `dinp` aliases the inputs, so it would not vectorize the loop.
        var i = 0
        while i + 8 <= count {
            let x = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD8<Float>.self)
            let g = UnsafeRawPointer(dout + i).loadUnaligned(as: SIMD8<Float>.self)
            let sum = UnsafeRawPointer(dinp + i).loadUnaligned(as: SIMD8<Float>.self) + g.replacing(with: 0, where: x .<= 0)
            UnsafeMutableRawPointer(dinp + i).storeBytes(of: sum, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            dinp[i] += inp[i] > 0 ? dout[i] : 0
            i += 1
        }
    case .gelu:
        let scale: Float = (2 / Float.pi).squareRoot()
        for i in 0..<count {
            let x = inp[i]
            let inner = scale * (x + 0.044715 * x * x * x)
            let t = tanhf(inner)
            let dInner = scale * (1 + 3 * 0.044715 * x * x)
            dinp[i] += dout[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner)
        }
    }
}

/// Values per chunk of the parallel element-wise passes.
let elementwiseChunk = 32_768

/// `activationForward` in parallel chunks.
func activationForward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, kind: Activation, work: ParallelWork
) {
    work.forEach((count + elementwiseChunk - 1) / elementwiseChunk) { chunk, _ in
        let first = chunk * elementwiseChunk
        activationForward(out: out + first, inp: inp + first, count: min(elementwiseChunk, count - first), kind: kind)
    }
}

/// `activationBackward` in parallel chunks.
func activationBackward(
    dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, count: Int,
    kind: Activation, work: ParallelWork
) {
    work.forEach((count + elementwiseChunk - 1) / elementwiseChunk) { chunk, _ in
        let first = chunk * elementwiseChunk
        activationBackward(
            dinp: dinp + first, dout: dout + first, inp: inp + first, count: min(elementwiseChunk, count - first),
            kind: kind)
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
    let keep = 1 / (1 - probability)
    let callSeed = generator.next()
    let chunks = (count + dropoutChunk - 1) / dropoutChunk
    work.forEach(chunks) { chunk, _ in
        var local = RandomGenerator(seed: callSeed &+ UInt64(chunk) &* 0xD1B5_4A32_D192_ED03)
        for i in (chunk * dropoutChunk)..<min(count, (chunk + 1) * dropoutChunk) {
            mask[i] = local.nextFloat() < probability ? 0 : keep
        }
    }
}

/// Values per independently seeded dropout chunk.
let dropoutChunk = 16_384
