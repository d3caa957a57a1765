#if canImport(Glibc)
    import Glibc
#endif

// Element-wise kernels over `count` values.

/// out = act(inp). Caches nothing: backward reads `inp` (the pre-activation).
func activationForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, kind: Activation) {
    switch kind {
    case .relu:
        for i in 0..<count { out[i] = max(inp[i], 0) }
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
        // PyTorch's relu passes no gradient at exactly 0.
        for i in 0..<count where inp[i] > 0 { dinp[i] += dout[i] }
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

/// Inverted dropout: out = inp · mask, where mask is 0 with probability p and 1/(1−p)
/// otherwise. Writes the mask (the multiplier) for the backward pass. With p = 0 the mask
/// is all ones and the generator is not touched.
func dropoutForward(
    out: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int,
    probability: Float, generator: inout RandomGenerator
) {
    guard probability > 0 else {
        for i in 0..<count {
            mask[i] = 1
            out[i] = inp[i]
        }
        return
    }
    let keep = 1 / (1 - probability)
    for i in 0..<count {
        mask[i] = generator.nextFloat() < probability ? 0 : keep
        out[i] = inp[i] * mask[i]
    }
}
