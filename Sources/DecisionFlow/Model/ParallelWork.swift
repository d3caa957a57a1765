import CBLAS
import Dispatch

/// Runs independent pieces of work (one per (batch, head) pair, or per block of rows) on a
/// fixed number of workers.
///
/// Work item `i` always runs the same code on the same inputs whichever worker takes it, so
/// results are bit-for-bit identical for any worker count. Inside a parallel region each
/// worker's `cblas_sgemm` calls run single-threaded on that worker; outside, OpenBLAS gets
/// all `threadCount` threads for the large products.
struct ParallelWork {
    /// Workers (and BLAS threads outside parallel regions).
    let threadCount: Int

    init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
    }

    /// Calls `body(item, worker)` for every item in 0..<count; `worker` < threadCount
    /// identifies per-worker scratch. Returns when all items are done.
    func forEach(_ count: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        guard threadCount > 1, count > 1 else {
            for item in 0..<count { body(item, 0) }
            return
        }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(threadCount)) }
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
}
