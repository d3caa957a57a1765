import CBLAS

// Dimension letters: N rows (batch × tokens), I input width, O output width.
//
// Weights stay in the reference's own layout, so checkpoints map one to one:
// `nn.Linear` stores (O, I) ("outIn"), GPT-2's `Conv1D` stores (I, O) ("inOut").

/// How a weight matrix is stored.
public enum WeightLayout: Sendable {
    /// (O, I), PyTorch `nn.Linear`: out = inp · Wᵀ.
    case outIn
    /// (I, O), GPT-2 `Conv1D`: out = inp · W.
    case inOut
}

/// out (N, O) = inp (N, I) · W (+ bias), through `cblas_sgemm`.
///
/// Row strides `ldIn` and `ldOut` let a kernel read or write every third token of an
/// interleaved (R, s, a) sequence in place. Caches nothing: backward needs `inp` and `W`.
func linearForward(
    out: UnsafeMutablePointer<Float>, ldOut: Int, inp: UnsafePointer<Float>, ldIn: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, layout: WeightLayout, N: Int, I: Int, O: Int,
    accumulate: Bool = false
) {
    guard N > 0 else { return }
    let transB = layout == .outIn ? CblasTrans : CblasNoTrans
    let ldb = layout == .outIn ? I : O
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, transB, Int32(N), Int32(O), Int32(I), 1, inp, Int32(ldIn), weight,
        Int32(ldb), accumulate ? 1 : 0, out, Int32(ldOut))
    if let bias {
        for row in 0..<N {
            let line = out + row * ldOut
            for column in 0..<O { line[column] += bias[column] }
        }
    }
}

/// Backward of `linearForward`; accumulates (+=) into every gradient the caller zeroed.
///
/// Differentiates `out = inp · W + bias`:
/// dinp += dout · Wᵀ, dW += inpᵀ · dout, dbias += Σ_rows dout. `dinp` may be nil when the
/// input needs no gradient (the raw states and actions). With `ones` (N ones), the bias sum
/// is a BLAS matrix-vector product, which OpenBLAS spreads over its threads.
func linearBackward(
    dinp: UnsafeMutablePointer<Float>?, ldDinp: Int, dweight: UnsafeMutablePointer<Float>,
    dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, ldDout: Int, inp: UnsafePointer<Float>,
    ldIn: Int, weight: UnsafePointer<Float>, layout: WeightLayout, N: Int, I: Int, O: Int,
    ones: UnsafePointer<Float>? = nil
) {
    guard N > 0 else { return }
    if let dinp {
        // dinp (N, I) += dout (N, O) · W as (O, I)
        let transB = layout == .outIn ? CblasNoTrans : CblasTrans
        let ldb = layout == .outIn ? I : O
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transB, Int32(N), Int32(I), Int32(O), 1, dout, Int32(ldDout), weight,
            Int32(ldb), 1, dinp, Int32(ldDinp))
    }
    switch layout {
    case .outIn:  // dW (O, I) += doutᵀ · inp
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(O), Int32(I), Int32(N), 1, dout, Int32(ldDout), inp,
            Int32(ldIn), 1, dweight, Int32(I))
    case .inOut:  // dW (I, O) += inpᵀ · dout
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(I), Int32(O), Int32(N), 1, inp, Int32(ldIn), dout,
            Int32(ldDout), 1, dweight, Int32(O))
    }
    if let dbias, let ones {
        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(N), Int32(O), 1, dout, Int32(ldDout), ones, 1, 1, dbias, 1)
    } else if let dbias {
        for row in 0..<N {
            let line = dout + row * ldDout
            for column in 0..<O { dbias[column] += line[column] }
        }
    }
}

/// The naive triple loop beside `linearForward`, for tests: out = inp · W (+ bias).
func linearForwardNaive(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, layout: WeightLayout, N: Int, I: Int, O: Int
) {
    for row in 0..<N {
        for column in 0..<O {
            var sum = bias?[column] ?? 0
            for k in 0..<I {
                let w = layout == .outIn ? weight[column * I + k] : weight[k * O + column]
                sum += inp[row * I + k] * w
            }
            out[row * O + column] = sum
        }
    }
}
