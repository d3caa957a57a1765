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
        var sum: Float = 0
        for c in 0..<C { sum += x[c] }
        let m = sum / Float(C)
        var variance: Float = 0
        for c in 0..<C {
            let shifted = x[c] - m
            variance += shifted * shifted
        }
        variance /= Float(C)
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
        var dnMean: Float = 0
        var dnDotN: Float = 0
        for c in 0..<C {
            let n = (x[c] - m) * s
            let dn = weight[c] * g[c]
            dnMean += dn
            dnDotN += dn * n
        }
        dnMean /= Float(C)
        dnDotN /= Float(C)
        for c in 0..<C {
            let n = (x[c] - m) * s
            dbias[c] += g[c]
            dweight[c] += n * g[c]
            dx[c] += s * (weight[c] * g[c] - dnMean - n * dnDotN)
        }
    }
}
