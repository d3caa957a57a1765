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
            let dn = UnsafeRawPointer(weight + c).loadUnaligned(as: SIMD8<Float>.self)
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

/// `layerNormForward` over blocks of `layerNormRowBlock` rows, in parallel.
func layerNormForward(
    out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, N: Int, C: Int, eps: Float,
    work: ParallelWork
) {
    let blocks = (N + layerNormRowBlock - 1) / layerNormRowBlock
    work.forEach(blocks) { block, _ in
        let first = block * layerNormRowBlock
        layerNormForward(
            out: out + first * C, mean: mean + first, rstd: rstd + first, inp: inp + first * C, weight: weight,
            bias: bias, N: min(layerNormRowBlock, N - first), C: C, eps: eps)
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
    work.forEach(blocks) { block, _ in
        let first = block * layerNormRowBlock
        let partial = partials + block * 2 * C
        partial.update(repeating: 0, count: 2 * C)
        layerNormBackward(
            dinp: dinp + first * C, dweight: partial, dbias: partial + C, dout: dout + first * C,
            inp: inp + first * C, weight: weight, mean: mean + first, rstd: rstd + first,
            N: min(layerNormRowBlock, N - first), C: C)
    }
    for block in 0..<blocks {
        let partial = partials + block * 2 * C
        for c in 0..<C {
            dweight[c] += partial[c]
            dbias[c] += partial[C + c]
        }
    }
}
