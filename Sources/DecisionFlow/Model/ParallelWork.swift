import CBLAS

/// Runs independent pieces of work on a fixed number of workers, and splits large matrix
/// products across them.
///
/// OpenBLAS itself is kept at one thread: its own pool spins (`sched_yield`) between calls
/// and would compete with these workers for the cores. Instead, a large product is cut into
/// `threadCount` slabs of output rows (or columns), one single-threaded `cblas_sgemm` each.
/// Every output element is then still one dot product over K, so a given thread count always
/// gives the same bits; work items run the same code on the same inputs whichever worker takes
/// them.
struct ParallelWork {
    /// Workers.
    let threadCount: Int
    /// The threads, when there is more than one worker.
    private let pool: WorkerPool?

    init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        pool = self.threadCount > 1 ? WorkerPool(threadCount: self.threadCount) : nil
        openblas_set_num_threads(1)
    }

    /// Calls `kernel(&arguments, item, worker)` for every item in 0..<count; `worker` <
    /// threadCount identifies per-worker scratch. Returns when all items are done.
    ///
    /// Items must write disjoint memory. `arguments` lives on the caller's stack for the
    /// duration of the loop; the kernel reads it through the raw pointer.
    func forEach<Arguments>(_ count: Int, _ arguments: Arguments, _ kernel: ParallelKernel) {
        withUnsafePointer(to: arguments) { pointer in
            let raw = UnsafeRawPointer(pointer)
            guard let pool, count > 1 else {
                for item in 0..<count { kernel(raw, item, 0) }
                return
            }
            pool.run(count, raw, kernel)
        }
    }

    /// Products smaller than this (M·N·K) run on one worker: splitting costs more than it saves.
    static let splitThreshold = 1 << 18

    /// C = alpha·op(A)·op(B) + beta·C (row-major), split across the workers by rows of C, or by
    /// columns when C has few rows.
    func sgemm(
        transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float, A: UnsafePointer<Float>, lda: Int,
        B: UnsafePointer<Float>, ldb: Int, beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard threadCount > 1, M * N * K >= Self.splitThreshold else {
            cblas_sgemm(
                CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(M),
                Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
            return
        }
        let splitRows = M >= N
        let extent = splitRows ? M : N
        // Slabs in multiples of 16, the kernels' register-block size.
        let slab = ((extent + threadCount - 1) / threadCount + 15) / 16 * 16
        let arguments = GemmSlabs(
            transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb, beta: beta,
            C: C, ldc: ldc, splitRows: splitRows, extent: extent, slab: slab)
        forEach((extent + slab - 1) / slab, arguments) { raw, index, _ in
            let g = raw.assumingMemoryBound(to: GemmSlabs.self).pointee
            let start = index * g.slab
            let size = min(g.slab, g.extent - start)
            let a = g.splitRows ? (g.transA ? g.A + start : g.A + start * g.lda) : g.A
            let b = g.splitRows ? g.B : (g.transB ? g.B + start * g.ldb : g.B + start)
            let c = g.splitRows ? g.C + start * g.ldc : g.C + start
            cblas_sgemm(
                CblasRowMajor, g.transA ? CblasTrans : CblasNoTrans, g.transB ? CblasTrans : CblasNoTrans,
                Int32(g.splitRows ? size : g.M), Int32(g.splitRows ? g.N : size), Int32(g.K), g.alpha, a, Int32(g.lda),
                b, Int32(g.ldb), g.beta, c, Int32(g.ldc))
        }
    }
}

/// One split product, for `ParallelWork.sgemm`'s kernel.
private struct GemmSlabs {
    var transA: Bool, transB: Bool
    var M: Int, N: Int, K: Int
    var alpha: Float
    var A: UnsafePointer<Float>, lda: Int
    var B: UnsafePointer<Float>, ldb: Int
    var beta: Float
    var C: UnsafeMutablePointer<Float>, ldc: Int
    var splitRows: Bool
    var extent: Int, slab: Int
}
