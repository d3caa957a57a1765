/// The memory an `ActingEngine` acts with, for `agents` agents of one model shape: what each
/// agent carries between steps, and the scratch of one pass.
///
/// Carried, per agent (the memory that grows with N):
/// - flow attention: every layer's and head's running Flow-Attention state (`FlowRecurrence`),
///   layers · heads · (D² + 4D + 2) floats;
/// - softmax attention: every layer's projections of the window's tokens (a key-value cache,
///   queries included so the kernel reads them in place), layers · 3K · 3C floats.
///
/// Scratch, shared by all agents: one pass's activations for `rowCapacity` token rows, reused
/// layer after layer (acting keeps nothing for a backward pass). A pass over more agents than
/// that is run in groups, so the scratch does not grow with N once N·3K passes
/// `targetRows`.
///
/// Dimension letters as in `DecisionTransformer`; K the context length, L = 3K.
final class ActingWorkspace {
    /// Token rows a pass holds before it is split into groups: enough rows for BLAS to run at
    /// full speed, few enough that the scratch stays small (8 KB a row at dt-default).
    static let targetRows = 4096

    /// Passes of fewer token rows than this run on one thread: waking the workers costs more
    /// than they save on them (a one-agent decision at K 20, 60 rows, took 1.3 ms on two
    /// threads against 0.8 ms on one).
    static let parallelRows = 256

    let configuration: ModelConfiguration
    let agents: Int
    /// The workers, for passes of at least `parallelRows` rows.
    let work: ParallelWork
    /// The calling thread alone, for smaller passes.
    let serial = ParallelWork(threadCount: 1)
    /// Token rows one pass holds.
    let rowCapacity: Int
    /// (rows, C) each: the embeddings (then the output of every projection), the residual
    /// stream, the LayerNorm outputs, the attention outputs, and Flow-Attention's products
    /// before allocation.
    let projected, x, normed, attention, beforeAllocation: UnsafeMutablePointer<Float>
    /// (rows) LayerNorm statistics, which acting does not keep.
    let mean, rstd: UnsafeMutablePointer<Float>
    /// (rows, 3C) the query, key and value projections.
    let qkv: UnsafeMutablePointer<Float>
    /// (rows, F) the MLP before and after its activation.
    let fcPre, fcActivated: UnsafeMutablePointer<Float>
    /// (one row per sequence of a pass, A) the action head's output.
    let actions: UnsafeMutablePointer<Float>
    /// Flow: the per-position scalars and chunk states of every (sequence, head) pair of a pass.
    let flowCache: UnsafeMutablePointer<Float>
    /// One per worker.
    let flowScratch: [FlowAttentionScratch]
    /// Softmax: (L, L) attention probabilities per worker.
    let softmaxScratch: UnsafeMutablePointer<Float>?
    /// Flow: every agent's carried state.
    let recurrence: FlowRecurrence?
    /// Softmax: every agent's cached projections, (agent, layer, L rows, 3C).
    let keyCache: UnsafeMutablePointer<Float>?
    /// Floats of `keyCache` per agent.
    let keyStride: Int
    /// The inputs of a window pass: up to `windowCapacity(timesteps: 1)` windows.
    let windows: TrajectoryBatch
    /// The inputs of an append pass: each agent's last two steps.
    let tails: TrajectoryBatch
    /// Sequences an append pass holds.
    let appendCapacity: Int
    /// The agent of each sequence of the current pass.
    let sequenceAgents: UnsafeMutablePointer<Int>
    /// Softmax append: the cached rows (3T) of each sequence's agent, new rows included.
    let cachedRows: UnsafeMutablePointer<Int>
    private let storage: UnsafeMutablePointer<Float>

    /// The buffers `CarvedStorage` hands out, by name.
    private struct Carved {
        var projected, x, normed, attention, beforeAllocation, mean, rstd, qkv: UnsafeMutablePointer<Float>
        var fcPre, fcActivated, actions, flowCache, softmaxScratch, keyCache: UnsafeMutablePointer<Float>
    }

    init(
        configuration: ModelConfiguration, agents: Int, threads: Int, flowChunkLength: Int?,
        rowLimit: Int = ActingWorkspace.targetRows
    ) {
        precondition(agents >= 1)
        let c = configuration
        self.configuration = c
        self.agents = agents
        work = ParallelWork(threadCount: threads)
        let (C, S, A, F, H, D) = c.letters
        let K = c.contextLength
        let L = c.tokenCount
        let flow = c.attention == .flow
        flowScratch = (0..<(flow ? work.threadCount : 1)).map { _ in
            FlowAttentionScratch(L: flow ? L : 0, D: D, chunk: flowChunkLength)
        }
        let chunk = flowScratch[0].chunk
        let appended = WindowTokens.appended.count
        let rows = max(L, appended, min(agents * L, rowLimit))
        rowCapacity = rows
        appendCapacity = min(agents, rows / appended)
        let windowSequences = min(agents, rows / WindowTokens.perStep)
        // A window pass of T steps holds min(agents, rows / 3T) sequences; size the flow cache
        // for the largest T needs, and for an append pass's rows.
        var flowCacheCount = 0
        if flow {
            flowCacheCount = appendCapacity * H * FlowCache.count(L: appended, D: D, chunk: chunk)
            for T in 1...K {
                let L = WindowTokens.count(steps: T)
                let count = min(agents, rows / L) * H * FlowCache.count(L: L, D: D, chunk: chunk)
                flowCacheCount = max(flowCacheCount, count)
            }
        }
        let actionRows = max(windowSequences, appendCapacity)
        let softmaxScratchCount = flow ? 0 : L * L * work.threadCount
        let keyStride = c.layerCount * L * 3 * C
        let keyCacheCount = flow ? 0 : agents * keyStride
        // Every count computed first: one expression of them all takes the type checker long
        // enough to fail a build on a loaded machine.
        let rowsC: Int = rows * C
        let beforeAllocationCount: Int = flow ? rowsC : 0
        let qkvCount: Int = 3 * rowsC
        let rowsF: Int = rows * F
        let actionCount: Int = actionRows * A
        let carved = CarvedStorage { (take: (Int) -> UnsafeMutablePointer<Float>) -> Carved in
            Carved(
                projected: take(rowsC), x: take(rowsC), normed: take(rowsC), attention: take(rowsC),
                beforeAllocation: take(beforeAllocationCount), mean: take(rows), rstd: take(rows),
                qkv: take(qkvCount), fcPre: take(rowsF), fcActivated: take(rowsF),
                actions: take(actionCount), flowCache: take(flowCacheCount), softmaxScratch: take(softmaxScratchCount),
                keyCache: take(keyCacheCount))
        }
        storage = carved.storage
        let b = carved.buffers
        (projected, x, normed, attention, beforeAllocation) = (b.projected, b.x, b.normed, b.attention, b.beforeAllocation)
        (mean, rstd, qkv, fcPre, fcActivated) = (b.mean, b.rstd, b.qkv, b.fcPre, b.fcActivated)
        (actions, flowCache) = (b.actions, b.flowCache)
        softmaxScratch = flow ? nil : b.softmaxScratch
        keyCache = flow ? nil : b.keyCache
        self.keyStride = keyStride
        recurrence = flow ? FlowRecurrence(configuration: c, capacity: agents) : nil
        windows = TrajectoryBatch(capacity: windowSequences, timesteps: K, stateDimension: S, actionDimension: A)
        tails = TrajectoryBatch(capacity: appendCapacity, timesteps: min(2, K), stateDimension: S, actionDimension: A)
        sequenceAgents = .allocate(capacity: agents)
        sequenceAgents.initialize(repeating: 0, count: agents)
        cachedRows = .allocate(capacity: agents)
        cachedRows.initialize(repeating: 0, count: agents)
    }

    deinit {
        storage.deallocate()
        sequenceAgents.deallocate()
        cachedRows.deallocate()
    }

    /// The workers a pass of `rows` token rows runs on.
    func work(rows: Int) -> ParallelWork { rows >= Self.parallelRows ? work : serial }

    /// Sequences a window pass of `timesteps` steps holds.
    func windowCapacity(timesteps: Int) -> Int { min(windows.capacity, rowCapacity / WindowTokens.count(steps: timesteps)) }

    /// Agent `agent`'s cached projections in layer `layer`, (L, 3C) rows.
    func cachedProjections(agent: Int, layer: Int) -> UnsafeMutablePointer<Float> {
        keyCache! + agent * keyStride + layer * (keyStride / configuration.layerCount)
    }
}
