// Dimension letters: N rows, C channels.

/// LayerNorm over the last dimension (PyTorch `nn.LayerNorm`, biased variance).
///
/// out = (inp − mean) · rstd · weight + bias, with rstd = 1 / √(var + eps).
/// Caches `mean` and `rstd` (N each) for the backward pass.
func layerNormForward(
    out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, N: Int, C: Int, eps: Float
) {
    for row in 0..<N {
        let x = inp + row * C
        let m = vectorSum(x, count: C) / Float(C)
        let variance = vectorSquaredDeviation(x, from: m, count: C) / Float(C)
        let s = 1 / (variance + eps).squareRoot()
        let y = out + row * C
        for c in 0..<C { y[c] = (x[c] - m) * s * weight[c] + bias[c] }
        mean[row] = m
        rstd[row] = s
    }
}

/// Backward of `layerNormForward`; accumulates into `dinp`, `dweight` and `dbias`.
///
/// With n = (x − mean)·rstd and dn = dout · weight:
/// dinp += rstd · (dn − mean(dn) − n · mean(dn · n)), dweight += dout · n, dbias += dout.
func layerNormBackward(
    dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int
) {
    for row in 0..<N {
        let x = inp + row * C
        let g = dout + row * C
        let dx = dinp + row * C
        let m = mean[row]
        let s = rstd[row]
        // Σ dn and Σ dn·n, with dn = weight·g and n = (x − m)·s, in eight SIMD lanes.
        var sumLanes = SIMD8<Float>()
        var dotLanes = SIMD8<Float>()
        let center = SIMD8<Float>(repeating: m)
        var c = 0
        while c + 8 <= C {
            let dn =
                UnsafeRawPointer(weight + c).loadUnaligned(as: SIMD8<Float>.self)
                * UnsafeRawPointer(g + c).loadUnaligned(as: SIMD8<Float>.self)
            sumLanes += dn
            dotLanes += dn * (UnsafeRawPointer(x + c).loadUnaligned(as: SIMD8<Float>.self) - center)
            c += 8
        }
        var dnSum = sumLanes.sum()
        var dnDotCentered = dotLanes.sum()
        while c < C {
            dnSum += weight[c] * g[c]
            dnDotCentered += weight[c] * g[c] * (x[c] - m)
            c += 1
        }
        let dnMean = dnSum / Float(C)
        let dnDotN = dnDotCentered * s / Float(C)
        for c in 0..<C {
            let n = (x[c] - m) * s
            dbias[c] += g[c]
            dweight[c] += n * g[c]
            dx[c] += s * (weight[c] * g[c] - dnMean - n * dnDotN)
        }
    }
}

/// Rows per block of the parallel LayerNorm passes.
let layerNormRowBlock = 64

/// Arguments of the parallel LayerNorm passes.
private struct LayerNormBlocks {
    var out: UnsafeMutablePointer<Float>  // forward: out; backward: dinp
    var mean: UnsafeMutablePointer<Float>
    var rstd: UnsafeMutablePointer<Float>
    var inp: UnsafePointer<Float>
    var dout: UnsafePointer<Float>?
    var weight: UnsafePointer<Float>
    var bias: UnsafePointer<Float>
    var partials: UnsafeMutablePointer<Float>?
    var N: Int, C: Int
    var eps: Float
}

/// `layerNormForward` over blocks of `layerNormRowBlock` rows, in parallel.
func layerNormForward(
    out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, N: Int, C: Int, eps: Float,
    work: ParallelWork
) {
    let arguments = LayerNormBlocks(
        out: out, mean: mean, rstd: rstd, inp: inp, dout: nil, weight: weight, bias: bias, partials: nil, N: N, C: C,
        eps: eps)
    work.forEach((N + layerNormRowBlock - 1) / layerNormRowBlock, arguments) { raw, block, _ in
        let a = raw.assumingMemoryBound(to: LayerNormBlocks.self).pointee
        let first = block * layerNormRowBlock
        layerNormForward(
            out: a.out + first * a.C, mean: a.mean + first, rstd: a.rstd + first, inp: a.inp + first * a.C,
            weight: a.weight, bias: a.bias, N: min(layerNormRowBlock, a.N - first), C: a.C, eps: a.eps)
    }
}

/// `layerNormBackward` over blocks of rows, in parallel. Each block sums its weight and bias
/// gradients into its own slice of `partials` ((N / block) × 2C); the slices are then added
/// in block order, so the result does not depend on the number of workers.
func layerNormBackward(
    dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int, work: ParallelWork,
    partials: UnsafeMutablePointer<Float>
) {
    let blocks = (N + layerNormRowBlock - 1) / layerNormRowBlock
    let arguments = LayerNormBlocks(
        out: dinp, mean: UnsafeMutablePointer(mutating: mean), rstd: UnsafeMutablePointer(mutating: rstd), inp: inp,
        dout: dout, weight: weight, bias: weight, partials: partials, N: N, C: C, eps: 0)
    work.forEach(blocks, arguments) { raw, block, _ in
        let a = raw.assumingMemoryBound(to: LayerNormBlocks.self).pointee
        guard let dout = a.dout, let partials = a.partials else { return }
        let first = block * layerNormRowBlock
        let partial = partials + block * 2 * a.C
        partial.update(repeating: 0, count: 2 * a.C)
        layerNormBackward(
            dinp: a.out + first * a.C, dweight: partial, dbias: partial + a.C, dout: dout + first * a.C,
            inp: a.inp + first * a.C, weight: a.weight, mean: a.mean + first, rstd: a.rstd + first,
            N: min(layerNormRowBlock, a.N - first), C: a.C)
    }
    for block in 0..<blocks {
        let partial = partials + block * 2 * C
        for c in 0..<C {
            dweight[c] += partial[c]
            dbias[c] += partial[C + c]
        }
    }
}

/// The literal LayerNorm forward, generic over the floating-point type, for tests.
func layerNormForwardNaive<T: BinaryFloatingPoint>(_ x: [T], weight: [T], bias: [T], N: Int, C: Int, eps: T) -> [T] {
    var out = [T](repeating: 0, count: N * C)
    for row in 0..<N {
        let values = x[(row * C)..<((row + 1) * C)]
        let mean = values.reduce(0, +) / T(C)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / T(C)
        for c in 0..<C {
            out[row * C + c] = (x[row * C + c] - mean) / (variance + eps).squareRoot() * weight[c] + bias[c]
        }
    }
    return out
}
