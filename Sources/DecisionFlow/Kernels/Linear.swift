import CBLAS

// Dimension letters: N rows (batch × tokens), I input width, O output width.
//
// Weights stay in the reference's own layout, so checkpoints map one to one:
// `nn.Linear` stores (O, I) ("outIn"), GPT-2's `Conv1D` stores (I, O) ("inOut").

/// How a weight matrix is stored.
enum WeightLayout: Sendable {
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
    accumulate: Bool = false, work: ParallelWork = ParallelWork(threadCount: 1)
) {
    guard N > 0 else { return }
    work.sgemm(
        transA: false, transB: layout == .outIn, M: N, N: O, K: I, alpha: 1, A: inp, lda: ldIn, B: weight,
        ldb: layout == .outIn ? I : O, beta: accumulate ? 1 : 0, C: out, ldc: ldOut)
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
/// input needs no gradient (the raw states and actions); with `overwritesInputGradient` it is
/// written (=) rather than accumulated, which spares the caller zeroing it first. With `ones` (N ones), the bias sum
/// is a BLAS matrix-vector product, which OpenBLAS spreads over its threads.
func linearBackward(
    dinp: UnsafeMutablePointer<Float>?, ldDinp: Int, dweight: UnsafeMutablePointer<Float>,
    dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, ldDout: Int, inp: UnsafePointer<Float>,
    ldIn: Int, weight: UnsafePointer<Float>, layout: WeightLayout, N: Int, I: Int, O: Int,
    ones: UnsafePointer<Float>? = nil, overwritesInputGradient: Bool = false,
    work: ParallelWork = ParallelWork(threadCount: 1)
) {
    guard N > 0 else { return }
    if let dinp {
        // dinp (N, I) += dout (N, O) · W as (O, I)
        work.sgemm(
            transA: false, transB: layout == .inOut, M: N, N: I, K: O, alpha: 1, A: dout, lda: ldDout, B: weight,
            ldb: layout == .outIn ? I : O, beta: overwritesInputGradient ? 0 : 1, C: dinp, ldc: ldDinp)
    }
    switch layout {
    case .outIn:  // dW (O, I) += doutᵀ · inp
        work.sgemm(
            transA: true, transB: false, M: O, N: I, K: N, alpha: 1, A: dout, lda: ldDout, B: inp, ldb: ldIn,
            beta: 1, C: dweight, ldc: I)
    case .inOut:  // dW (I, O) += inpᵀ · dout
        work.sgemm(
            transA: true, transB: false, M: I, N: O, K: N, alpha: 1, A: inp, lda: ldIn, B: dout, ldb: ldDout,
            beta: 1, C: dweight, ldc: O)
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
