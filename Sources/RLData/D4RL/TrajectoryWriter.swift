#if canImport(Glibc)
    import Glibc
#endif

/// Records steps from a simulator into a D4RL-schema HDF5 file that h5py and D4RL's own
/// loader read.
///
/// Steps are buffered and written a chunk at a time to extendable, chunked, shuffled and
/// gzip-compressed datasets, so memory stays bounded however long the recording. The file
/// is written under `path + ".partial"` and renamed to `path` only by `finish()`, so a
/// crash or an error never leaves a half-written file under the final name, and never
/// replaces a good file that was there before.
///
/// Layout written (as D4RL's `collect_data.py`): `observations` (N, S), `actions` (N, A),
/// `rewards` (N,), `next_observations` (N, S) when recorded, all float32; `terminals` and
/// `timeouts` (N,) bool; `infos/qpos`, `infos/qvel` float32 when recorded; `metadata/*`
/// scalars.
public final class TrajectoryWriter {
    /// What the writer records.
    public struct Configuration: Sendable, Equatable {
        /// Width of one observation.
        public var observationDimension: Int
        /// Width of one action.
        public var actionDimension: Int
        /// Whether every step carries a next observation (`next_observations`).
        public var recordsNextObservations: Bool
        /// Width of `infos/qpos`, or nil to record none.
        public var qposDimension: Int?
        /// Width of `infos/qvel`, or nil to record none.
        public var qvelDimension: Int?
        /// Rows per chunk (and per write).
        public var chunkRows: Int
        /// gzip level for every array.
        public var gzipLevel: Int

        /// Creates a configuration; see the properties for the meaning of each value.
        public init(
            observationDimension: Int, actionDimension: Int, recordsNextObservations: Bool = true,
            qposDimension: Int? = nil, qvelDimension: Int? = nil, chunkRows: Int = 8192,
            gzipLevel: Int = 4
        ) {
            self.observationDimension = observationDimension
            self.actionDimension = actionDimension
            self.recordsNextObservations = recordsNextObservations
            self.qposDimension = qposDimension
            self.qvelDimension = qvelDimension
            self.chunkRows = chunkRows
            self.gzipLevel = gzipLevel
        }
    }

    /// The final path; the file appears there when `finish()` succeeds.
    public let path: String
    /// What is recorded.
    public let configuration: Configuration
    /// Steps appended so far.
    public private(set) var stepCount = 0

    private var file: HDF5File?
    private var columns: [String: HDF5Dataset] = [:]
    private var floatBuffers: [String: [Float]] = [:]
    private var terminalBuffer: [Bool] = []
    private var timeoutBuffer: [Bool] = []
    private var metadata: [(String, D4RLMetadataValue)] = []

    private var partialPath: String { path + ".partial" }

    /// Starts a recording that will be saved at `path`.
    public init(path: String, configuration: Configuration) throws {
        precondition(configuration.observationDimension > 0 && configuration.actionDimension > 0)
        self.path = path
        self.configuration = configuration
        // finish() renames over `path`: what is there must be a regular file (or nothing). A
        // device or FIFO (/dev/null) would be replaced by a regular file, not written to.
        var status = stat()
        if stat(path, &status) == 0 {
            switch status.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFDIR:
                throw D4RLError(
                    .writeFailed, file: path, problem: "is a directory; a recording is written to a file",
                    remedy: "Name a file to write, e.g. \(path)/recording.hdf5.")
            default:
                throw D4RLError(
                    .writeFailed, file: path,
                    problem: "is not a regular file (a device, FIFO or socket); a recording replaces the file at its path, which would destroy it",
                    remedy: "Name a regular file to write.")
            }
        }
        do {
            let file = try HDF5File.create(path + ".partial")
            let layout = HDF5DatasetLayout(
                chunkRows: configuration.chunkRows, gzipLevel: configuration.gzipLevel, shuffle: true,
                extendable: true)
            for (key, width) in floatColumns {
                columns[key] = try file.createDataset(
                    key, type: .float32, shape: key == "rewards" ? [0] : [0, width], layout: layout)
                floatBuffers[key] = []
            }
            for key in ["terminals", "timeouts"] {
                columns[key] = try file.createDataset(key, type: .bool, shape: [0], layout: layout)
            }
            self.file = file
        } catch let error as HDF5Error {
            columns.removeAll()
            unlink(path + ".partial")  // whatever was created before the failure
            throw D4RLError(
                .writeFailed, file: path, key: error.objectPath, problem: "cannot be created (\(error))",
                remedy: "Check that the directory exists and is writable.")
        }
    }

    /// The float columns and their widths.
    private var floatColumns: [(String, Int)] {
        var result = [
            ("observations", configuration.observationDimension),
            ("actions", configuration.actionDimension), ("rewards", 1),
        ]
        if configuration.recordsNextObservations {
            result.append(("next_observations", configuration.observationDimension))
        }
        if let width = configuration.qposDimension { result.append(("infos/qpos", width)) }
        if let width = configuration.qvelDimension { result.append(("infos/qvel", width)) }
        return result
    }

    /// Appends one step.
    ///
    /// - Parameters:
    ///   - observation: the observation the action was taken in.
    ///   - action: the action taken.
    ///   - reward: the step's reward.
    ///   - terminal: the environment ended the episode on this step.
    ///   - timeout: the time limit ended the episode on this step.
    ///   - nextObservation: the observation after the step (required when the configuration
    ///     records next observations).
    ///   - qpos: the simulator's positions *before* this step, as D4RL records them.
    ///   - qvel: the simulator's velocities before this step.
    /// - Throws: `D4RLError` when a width differs from the configuration or a value is NaN
    ///   or infinite; nothing of the step is recorded then.
    public func append(
        observation: [Float], action: [Float], reward: Float, terminal: Bool, timeout: Bool = false,
        nextObservation: [Float]? = nil, qpos: [Double]? = nil, qvel: [Double]? = nil
    ) throws {
        var values: [(String, [Float])] = [
            ("observations", observation), ("actions", action), ("rewards", [reward]),
        ]
        if configuration.recordsNextObservations {
            values.append(("next_observations", nextObservation ?? []))
        }
        if configuration.qposDimension != nil { values.append(("infos/qpos", (qpos ?? []).map { Float($0) })) }
        if configuration.qvelDimension != nil { values.append(("infos/qvel", (qvel ?? []).map { Float($0) })) }
        let widths = Dictionary(uniqueKeysWithValues: floatColumns)
        for (key, row) in values {
            guard row.count == widths[key] else {
                throw D4RLError(
                    .dimensionMismatch, file: path, key: key,
                    problem:
                        "step \(stepCount) has \(row.count) values, the writer was configured for \(widths[key] ?? 0)",
                    remedy: "Pass one value per dimension, as configured in TrajectoryWriter.Configuration.")
            }
            if let bad = row.first(where: { !$0.isFinite }) {
                throw D4RLError(
                    .nonFinite, file: path, key: key, problem: "step \(stepCount) holds \(bad)",
                    remedy: "Record only finite values; end the episode before the simulation diverges.")
            }
        }
        for (key, row) in values { floatBuffers[key, default: []] += row }
        terminalBuffer.append(terminal)
        timeoutBuffer.append(timeout)
        stepCount += 1
        if terminalBuffer.count >= configuration.chunkRows { try flush() }
    }

    /// Records a `metadata/<key>` scalar, e.g. `behavior/env_id` or `algorithm`.
    public func setMetadata(_ key: String, _ value: D4RLMetadataValue) {
        metadata.removeAll { $0.0 == key }
        metadata.append((key, value))
    }

    /// Writes what is buffered, the metadata, closes the file and moves it to `path`.
    ///
    /// A last step without a terminal or timeout flag is written as it is; readers keep it
    /// as an unfinished trajectory.
    public func finish() throws {
        guard file != nil else { return }
        try flush()
        do {
            try writing {
                for (key, value) in metadata {
                    switch value {
                    case .string(let text): try file?.writeString(text, to: "metadata/\(key)")
                    case .integer(let number): try file?.writeScalar(number, to: "metadata/\(key)", type: .int64)
                    case .real(let number): try file?.writeScalar(number, to: "metadata/\(key)", type: .float64)
                    }
                }
                try file?.flush()
            }
        } catch {
            abandon()
            throw error
        }
        columns.removeAll()  // closes the datasets, then the file, before the rename
        file = nil
        try moveRecording(from: partialPath, to: path, named: path, remedy: "the recording is in the .partial file")
    }

    /// Stops recording and deletes the partial file. `path` is left untouched.
    public func abandon() {
        columns.removeAll()
        file = nil
        unlink(partialPath)
    }

    private func flush() throws {
        guard !terminalBuffer.isEmpty else { return }
        try writing { try writeBuffers() }
    }

    /// Runs `body`, turning an HDF5 failure into the D4RL error of a failed write.
    private func writing(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as HDF5Error {
            throw D4RLError(
                .writeFailed, file: path, key: error.objectPath, problem: "could not be written (\(error))",
                remedy: "Check free disk space and permissions, then record again.")
        }
    }

    private func writeBuffers() throws {
        for (key, _) in floatColumns {
            guard let dataset = columns[key], let buffer = floatBuffers[key] else { continue }
            try buffer.withUnsafeBufferPointer { try dataset.appendRows($0) }
            floatBuffers[key]?.removeAll(keepingCapacity: true)
        }
        try columns["terminals"]?.appendBooleans(terminalBuffer)
        try columns["timeouts"]?.appendBooleans(timeoutBuffer)
        terminalBuffer.removeAll(keepingCapacity: true)
        timeoutBuffer.removeAll(keepingCapacity: true)
    }
}

/// Renames a finished recording (`from`, a partial file or folder) over its final name, as
/// the last step of a writer's `finish()`; `named` is what errors call it, `remedy` says where
/// the recording is if the rename fails.
func moveRecording(from partial: String, to final: String, named name: String, remedy: String) throws {
    guard rename(partial, final) == 0 else {
        let reason = String(cString: strerror(errno))
        throw D4RLError(
            .writeFailed, file: name, problem: "could not be moved into place from \(partial) (\(reason))",
            remedy: "Check permissions on the folder; \(remedy).")
    }
}
