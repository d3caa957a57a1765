import CBLAS
import Dispatch

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

    init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        openblas_set_num_threads(1)
    }

    /// Calls `body(item, worker)` for every item in 0..<count; `worker` < threadCount
    /// identifies per-worker scratch. Returns when all items are done.
    func forEach(_ count: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        guard threadCount > 1, count > 1 else {
            for item in 0..<count { body(item, 0) }
            return
        }
        let workers = min(threadCount, count)
        withoutActuallyEscaping(body) { body in
            // Items write disjoint memory (their own pair's rows, their worker's scratch), and
            // concurrentPerform returns only when every item is done.
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var item = worker
                while item < count {
                    body(item, worker)
                    item += workers
                }
            }
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
        func call(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
            cblas_sgemm(
                CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m),
                Int32(n), Int32(K), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        guard threadCount > 1, M * N * K >= Self.splitThreshold else {
            call(M, N, A, B, C)
            return
        }
        let splitRows = M >= N
        let extent = splitRows ? M : N
        // Slabs in multiples of 16, the kernels' register-block size.
        let slab = ((extent + threadCount - 1) / threadCount + 15) / 16 * 16
        let slabs = (extent + slab - 1) / slab
        forEach(slabs) { index, _ in
            let start = index * slab
            let size = min(slab, extent - start)
            if splitRows {
                call(size, N, transA ? A + start : A + start * lda, B, C + start * ldc)
            } else {
                call(M, size, A, transB ? B + start * ldb : B + start, C + start)
            }
        }
    }
}
