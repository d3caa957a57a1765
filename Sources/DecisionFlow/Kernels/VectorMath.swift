#if canImport(Glibc)
    import Glibc
#endif

// Reductions over contiguous Float vectors with explicit SIMD accumulators.
//
// Why: the compiler may not reorder a scalar `sum += x[i]` (floating-point addition is not
// associative), so such loops run one element at a time. Eight independent lanes, added
// together at the end, let them vectorize. The result differs from a sequential sum only in
// rounding.

/// Σ x[i] for i in 0..<count.
@inline(__always)
func vectorSum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>()
    var i = 0
    while i + 8 <= count {
        lanes += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var total = lanes.sum()
    while i < count {
        total += x[i]
        i += 1
    }
    return total
}

/// Σ x[i]·y[i] for i in 0..<count.
@inline(__always)
func vectorDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>()
    var i = 0
    while i + 8 <= count {
        lanes +=
            UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var total = lanes.sum()
    while i < count {
        total += x[i] * y[i]
        i += 1
    }
    return total
}

/// Σ (x[i] + a)·(y[i] + b) for i in 0..<count: Flow-Attention's dot products with eps.
@inline(__always)
func vectorShiftedDot(_ x: UnsafePointer<Float>, _ a: Float, _ y: UnsafePointer<Float>, _ b: Float, count: Int) -> Float
{
    var lanes = SIMD8<Float>()
    let shiftX = SIMD8<Float>(repeating: a)
    let shiftY = SIMD8<Float>(repeating: b)
    var i = 0
    while i + 8 <= count {
        lanes +=
            (UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) + shiftX)
            * (UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self) + shiftY)
        i += 8
    }
    var total = lanes.sum()
    while i < count {
        total += (x[i] + a) * (y[i] + b)
        i += 1
    }
    return total
}

/// Σ (x[i] − shift)² for i in 0..<count.
@inline(__always)
func vectorSquaredDeviation(_ x: UnsafePointer<Float>, from shift: Float, count: Int) -> Float {
    var lanes = SIMD8<Float>()
    let center = SIMD8<Float>(repeating: shift)
    var i = 0
    while i + 8 <= count {
        let deviation = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - center
        lanes += deviation * deviation
        i += 8
    }
    var total = lanes.sum()
    while i < count {
        total += (x[i] - shift) * (x[i] - shift)
        i += 1
    }
    return total
}

// Element-wise updates over contiguous Float vectors, eight lanes at a time. Unlike the
// reductions above these round exactly as the scalar loops would; they exist because the
// compiler cannot prove the pointers do not alias, and so keeps such loops scalar.

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) func store8(_ value: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: value, as: SIMD8<Float>.self)
}

/// out[i] = x[i]·scale + y[i] for i in 0..<count; `out` may be `y` (an axpy) or `x`.
@inline(__always)
func vectorScaleAdd(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ scale: Float, _ y: UnsafePointer<Float>,
    count: Int
) {
    let s = SIMD8<Float>(repeating: scale)
    var i = 0
    while i + 8 <= count {
        store8(load8(x + i) * s + load8(y + i), out + i)
        i += 8
    }
    while i < count {
        out[i] = x[i] * scale + y[i]
        i += 1
    }
}

/// out[i] = x[i]·scale for i in 0..<count; `out` may be `x`.
@inline(__always)
func vectorScale(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ scale: Float, count: Int) {
    let s = SIMD8<Float>(repeating: scale)
    var i = 0
    while i + 8 <= count {
        store8(load8(x + i) * s, out + i)
        i += 8
    }
    while i < count {
        out[i] = x[i] * scale
        i += 1
    }
}

/// e^x, eight lanes at a time, to about 1 ulp (relative error ≤ 2e-7 on the normal range).
///
/// Why: the flow kernel applies a sigmoid to every query and key, and a call to `expf` per
/// element cost about a tenth of a K 20 training step. Method: e^x = 2^n · e^r with
/// n = round(x / ln 2) and |r| ≤ ln 2 / 2, r computed in two parts for accuracy, and e^r from
/// 1 + r + r²·P(r), P of degree 5, with the coefficients of the Cephes library's expf. Inputs are
/// clamped to [−87.3, 88.7], where 2^n stays a normal float.
@inline(__always)
func vectorExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // Plain comparisons and bit casts only: the generic SIMD conversions (Float to Int32,
    // rounding rules) are not specialized and cost more than the whole polynomial.
    let low = SIMD8<Float>(repeating: -87.3)
    let high = SIMD8<Float>(repeating: 88.7)
    let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
    // Adding 1.5·2²³ rounds to an integer (to nearest, even) and leaves it in the low bits.
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    var r = clamped - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    p = p * r * r + r + 1
    let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let exponent = (integer &+ 127) &* 8_388_608  // (n + 127) · 2²³: the bits of 2ⁿ
    return p * unsafeBitCast(exponent, to: SIMD8<Float>.self)
}

/// x ← 1 / (1 + e^−x) for `count` values with row stride 1.
@inline(__always)
func vectorSigmoidInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        store8(1 / (1 + vectorExp(-load8(x + i))), x + i)
        i += 8
    }
    while i < count {
        x[i] = 1 / (1 + expf(-x[i]))
        i += 1
    }
}
