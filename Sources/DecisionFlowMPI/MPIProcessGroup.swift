import CMPI
import ProcessGroups
import Foundation

/// The processes `mpirun` (or a scheduler that starts MPI jobs, such as Slurm's `srun`)
/// started, as a `ProcessGroup` over Open MPI's `MPI_COMM_WORLD`.
///
/// A process started without a launcher never initializes MPI: `MPIProcessGroup.launched()`
/// returns nil, and the caller trains as one process, exactly as without MPI.
public final class MPIProcessGroup: ProcessGroup {
    public let rank: Int
    public let size: Int

    /// Why an MPI call failed: the call, the rank, and MPI's own message.
    public struct MPIError: Error, CustomStringConvertible, Sendable {
        /// The MPI function that failed.
        public var call: String
        /// The rank it failed on.
        public var rank: Int
        /// MPI's description of the error code.
        public var message: String
        public var description: String { "rank \(rank): \(call) failed: \(message)" }
    }

    /// Whether this process was started by an MPI launcher: Open MPI's `mpirun` sets
    /// `OMPI_COMM_WORLD_SIZE`, PMIx launchers (`srun --mpi=pmix`) set `PMIX_RANK`.
    public static var isLaunchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
            || environment["PMI_RANK"] != nil
    }

    /// The group of this job's processes, initializing MPI once; nil when this process was not
    /// started by an MPI launcher.
    public static func launched() throws -> MPIProcessGroup? {
        guard isLaunchedByMPI else { return nil }
        if let shared { return shared }
        let group = try MPIProcessGroup()
        shared = group
        return group
    }

    nonisolated(unsafe) private static var shared: MPIProcessGroup?

    private init() throws {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var argc: Int32 = 0
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
            let status = MPI_Init(&argc, &argv)
            guard status == swift_MPI_SUCCESS() else {
                throw MPIError(call: "MPI_Init", rank: -1, message: MPIProcessGroup.message(for: status))
            }
        }
        // Errors come back as codes (and become Swift errors) instead of aborting silently.
        MPI_Comm_set_errhandler(swift_MPI_COMM_WORLD(), swift_MPI_ERRORS_RETURN())
        var rank: Int32 = 0
        var size: Int32 = 0
        MPI_Comm_rank(swift_MPI_COMM_WORLD(), &rank)
        MPI_Comm_size(swift_MPI_COMM_WORLD(), &size)
        self.rank = Int(rank)
        self.size = Int(size)
        atexit { MPIProcessGroup.finalize() }
    }

    /// Ends MPI at a normal exit (every rank reaches it after the last collective).
    private static func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    static func message(for code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(swift_MPI_MAX_ERROR_STRING()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func check(_ status: Int32, _ call: String) throws {
        guard status == swift_MPI_SUCCESS() else {
            throw MPIError(call: call, rank: rank, message: MPIProcessGroup.message(for: status))
        }
    }

    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        guard values.count > 0 else { return }
        try check(
            MPI_Allreduce(
                swift_MPI_IN_PLACE(), values.baseAddress, Int32(values.count), swift_MPI_FLOAT(), swift_MPI_SUM(),
                swift_MPI_COMM_WORLD()), "MPI_Allreduce")
    }

    public func allGather(_ values: [UInt64]) throws -> [UInt64] {
        try allGather(values, type: swift_MPI_UINT64_T())
    }

    public func allGather(_ values: [Double]) throws -> [Double] {
        try allGather(values, type: swift_MPI_DOUBLE())
    }

    /// `MPI_Allgather` of equal-sized contributions of MPI type `type`, in rank order.
    private func allGather<T: Numeric>(_ values: [T], type: MPI_Datatype) throws -> [T] {
        var result = [T](repeating: 0, count: values.count * size)
        try values.withUnsafeBufferPointer { input in
            try result.withUnsafeMutableBufferPointer { output in
                try check(
                    MPI_Allgather(
                        input.baseAddress, Int32(values.count), type, output.baseAddress, Int32(values.count), type,
                        swift_MPI_COMM_WORLD()), "MPI_Allgather")
            }
        }
        return result
    }

    public func abort(code: Int32) {
        // Open MPI's MPI_Abort ends every process of the job, this one included.
        MPI_Abort(swift_MPI_COMM_WORLD(), code)
    }
}
