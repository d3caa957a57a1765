#if canImport(Glibc)
    import Glibc
#endif

/// A loop body: a plain C function pointer called with the loop's arguments (a pointer to a
/// struct on the caller's stack), the item and the worker.
///
/// Why not a Swift closure: handing a non-escaping closure to another thread needs
/// `withoutActuallyEscaping`, which allocates on every call, and a training step must not.
typealias ParallelKernel = @convention(c) (_ arguments: UnsafeRawPointer, _ item: Int, _ worker: Int) -> Void

/// Persistent worker threads that run one parallel loop at a time, allocating nothing per
/// loop (libdispatch's `concurrentPerform` allocates on every call).
///
/// The calling thread takes part as worker 0; `threadCount − 1` threads wait on a condition
/// variable between loops. Worker `w` runs items w, w + W, w + 2W, … of each loop.
final class WorkerPool: @unchecked Sendable {
    let threadCount: Int
    private var threads: [pthread_t] = []
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workReady = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let workDone = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var generation = 0
    private var pending = 0
    private var shuttingDown = false
    private var itemCount = 0
    private var kernel: ParallelKernel?
    private var arguments: UnsafeRawPointer?

    init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(workReady, nil)
        pthread_cond_init(workDone, nil)
        for worker in 1..<self.threadCount {
            let context = UnsafeMutablePointer<(WorkerPool, Int)>.allocate(capacity: 1)
            // Unretained: deinit joins every thread before the pool's memory goes away.
            context.initialize(to: (self, worker))
            var thread = pthread_t()
            let status = pthread_create(
                &thread, nil,
                { raw in
                    guard let raw else { return nil }
                    let context = raw.assumingMemoryBound(to: (WorkerPool, Int).self)
                    let (pool, worker) = context.pointee
                    context.deinitialize(count: 1)
                    context.deallocate()
                    pool.workerLoop(worker)
                    return nil
                }, context)
            precondition(status == 0, "pthread_create failed with \(status)")
            threads.append(thread)
        }
    }

    deinit {
        pthread_mutex_lock(mutex)
        shuttingDown = true
        pthread_cond_broadcast(workReady)
        pthread_mutex_unlock(mutex)
        for thread in threads { pthread_join(thread, nil) }
        pthread_cond_destroy(workReady)
        pthread_cond_destroy(workDone)
        pthread_mutex_destroy(mutex)
        workReady.deallocate()
        workDone.deallocate()
        mutex.deallocate()
    }

    /// Runs `kernel(arguments, item, worker)` for every item in 0..<count across the workers,
    /// and returns when all are done. Not reentrant: one loop at a time per pool.
    func run(_ count: Int, _ arguments: UnsafeRawPointer, _ kernel: ParallelKernel) {
        guard threadCount > 1, count > 1 else {
            for item in 0..<count { kernel(arguments, item, 0) }
            return
        }
        pthread_mutex_lock(mutex)
        self.kernel = kernel
        self.arguments = arguments
        itemCount = count
        pending = threadCount - 1
        generation += 1
        pthread_cond_broadcast(workReady)
        pthread_mutex_unlock(mutex)

        var item = 0
        while item < count {
            kernel(arguments, item, 0)
            item += threadCount
        }

        pthread_mutex_lock(mutex)
        while pending > 0 { pthread_cond_wait(workDone, mutex) }
        self.kernel = nil
        self.arguments = nil
        pthread_mutex_unlock(mutex)
    }

    private func workerLoop(_ worker: Int) {
        var seen = 0
        while true {
            pthread_mutex_lock(mutex)
            while generation == seen && !shuttingDown { pthread_cond_wait(workReady, mutex) }
            if shuttingDown {
                pthread_mutex_unlock(mutex)
                return
            }
            seen = generation
            let kernel = self.kernel
            let arguments = self.arguments
            let count = itemCount
            pthread_mutex_unlock(mutex)

            if let kernel, let arguments {
                var item = worker
                while item < count {
                    kernel(arguments, item, worker)
                    item += threadCount
                }
            }

            pthread_mutex_lock(mutex)
            pending -= 1
            if pending == 0 { pthread_cond_signal(workDone) }
            pthread_mutex_unlock(mutex)
        }
    }
}
