/// The processes that train one model together by data parallelism. Each has a rank in
/// 0..<size; rank 0 writes the run's files. A single process is a group of one
/// (`SingleProcess`), which trains exactly as DecisionFlow always has; `MPIProcessGroup` (in
/// DecisionFlowMPI) is the group `mpirun` starts.
///
/// Every collective call must be made by every process of the group, in the same order.
public protocol ProcessGroup: AnyObject {
    /// This process's index, 0..<size.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Replaces `values` on every process by their element-wise sum over all processes.
    func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws
    /// Every process's `values` (the same count on each), concatenated in rank order.
    func allGather(_ values: [UInt64]) throws -> [UInt64]
    /// Every process's `values` (the same count on each), concatenated in rank order.
    func allGather(_ values: [Double]) throws -> [Double]
    /// Stops every other process of the group, which would otherwise wait for this one in
    /// their next collective call for ever, with exit status `code`. An MPI group stops them
    /// all, this process too; a group of one has nothing to stop and returns. Either way the
    /// caller then ends its own process: library code never exits.
    func abort(code: Int32)
}

extension ProcessGroup {
    /// Whether this process writes the run's files (rank 0).
    public var isLeader: Bool { rank == 0 }

    /// The rows of a global batch of `count` windows that this process computes: contiguous,
    /// as even as possible, in rank order.
    public func slice(of count: Int) -> Range<Int> {
        let base = count / size
        let extra = count % size
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }
}

/// One process on its own: every collective is the identity.
public final class SingleProcess: ProcessGroup {
    public let rank = 0
    public let size = 1

    /// Creates the group of this process alone.
    public init() {}

    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {}
    public func allGather(_ values: [UInt64]) throws -> [UInt64] { values }
    public func allGather(_ values: [Double]) throws -> [Double] { values }
    public func abort(code: Int32) {}
}
