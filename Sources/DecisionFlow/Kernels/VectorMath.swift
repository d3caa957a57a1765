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
