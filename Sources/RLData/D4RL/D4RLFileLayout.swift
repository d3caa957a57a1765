import Foundation

/// One D4RL file opened and checked against the schema, before any bulk data is read.
///
/// Checking everything that can be checked from shapes and types first means a bad file
/// fails in milliseconds, before the loader allocates or decompresses anything.
struct D4RLFileLayout: StepTableSource {
    let path: String
    let file: HDF5File
    let steps: Int
    let observationDimension: Int
    let actionDimension: Int
    let hasTimeouts: Bool
    let hasNextObservations: Bool
    let metadata: [String: D4RLMetadataValue]

    init(path: String) throws {
        try self.init(path: path) { try HDF5File.open(path) }
    }

    /// A file image in memory, named `name` in errors.
    init(image: [UInt8], name: String) throws {
        try self.init(path: name) { try HDF5File.open(image: image, name: name) }
    }

    private init(path: String, open: () throws -> HDF5File) throws {
        self.path = path
        do {
            file = try open()
        } catch let error as HDF5Error {
            let missing = !FileManager.default.fileExists(atPath: path)
            let relative =
                path.hasPrefix("/")
                ? "" : " (a relative path is resolved against the working directory, \(FileManager.default.currentDirectoryPath))"
            throw D4RLError(
                .unreadableFile, file: path,
                problem: "cannot be opened as HDF5 (\(error.stack.last ?? "unknown cause"))",
                remedy: missing
                    ? "Check the path\(relative)."
                    : "The file is not HDF5, or it is truncated or corrupt: download or write it again."
            )
        }

        // A root group that cannot be listed would make every key look missing; say so instead.
        do {
            _ = try file.memberNames(of: "")
        } catch let error as HDF5Error {
            throw D4RLError(
                .unreadableFile, file: path, problem: "has a root group that cannot be read (\(error.stack.last ?? "unknown cause"))",
                remedy: "The file is damaged: download or write it again.")
        }
        let observations = try D4RLFileLayout.numericKey("observations", in: file, ranks: [2])
        let actions = try D4RLFileLayout.numericKey("actions", in: file, ranks: [2])
        let rewards = try D4RLFileLayout.numericKey("rewards", in: file, ranks: [1, 2])
        let terminals = try D4RLFileLayout.numericKey("terminals", in: file, ranks: [1, 2])
        let timeouts = try D4RLFileLayout.optionalNumericKey("timeouts", in: file, ranks: [1, 2])
        let next = try D4RLFileLayout.optionalNumericKey("next_observations", in: file, ranks: [2])

        steps = observations.rowCount
        guard steps > 0 else {
            throw D4RLError(
                .empty, file: path, key: "observations", problem: "holds no steps (shape \(observations.shape))",
                remedy: "Use a file with at least one complete episode.")
        }
        for column in [rewards, terminals, timeouts].compactMap({ $0 }) where column.rank == 2 && column.shape[1] != 1 {
            throw D4RLError(
                .wrongRank, file: path, key: column.path,
                problem: "has shape \(column.shape); a per-step column must be (N,) or (N, 1)",
                remedy: "Store one value per step.")
        }
        for key in [actions, rewards, terminals, timeouts, next].compactMap({ $0 }) where key.rowCount != steps {
            throw D4RLError(
                .lengthMismatch, file: path, key: key.path,
                problem: "has \(key.rowCount) rows but 'observations' has \(steps)",
                remedy:
                    "Every per-step key must have one row per step; the file was written inconsistently or cut short.")
        }
        if let next, next.shape != observations.shape {
            throw D4RLError(
                .dimensionMismatch, file: path, key: "next_observations",
                problem: "has shape \(next.shape) but 'observations' has \(observations.shape)",
                remedy: "Write next_observations with the same shape as observations, or leave it out.")
        }
        observationDimension = observations.shape[1]
        actionDimension = actions.shape[1]
        guard observationDimension > 0, actionDimension > 0 else {
            throw D4RLError(
                .empty, file: path, key: observationDimension > 0 ? "actions" : "observations",
                problem: "rows have width 0", remedy: "Store at least one value per observation and action.")
        }
        hasTimeouts = timeouts != nil
        hasNextObservations = next != nil
        metadata = D4RLMetadataValue.readAll(from: file)
    }

    private static func optionalNumericKey(_ key: String, in file: HDF5File, ranks: [Int]) throws -> HDF5Dataset? {
        guard file.kind(of: key) == .dataset else { return nil }
        return try numericKey(key, in: file, ranks: ranks)
    }

    private static func numericKey(_ key: String, in file: HDF5File, ranks: [Int]) throws -> HDF5Dataset {
        guard file.kind(of: key) == .dataset else {
            throw D4RLError(
                .missingKey, file: file.path, key: key,
                problem: "is missing; a D4RL file needs observations, actions, rewards and terminals",
                remedy: "Check that this is a D4RL-schema file (see `d4rl-run inspect`), or write the key.")
        }
        let dataset = try damaged(file.path, key: key, "cannot be opened") { try file.dataset(key) }
        if let missing = dataset.filters.first(where: { !$0.isAvailable }) {
            throw D4RLError(
                .unreadableFile, file: file.path, key: key,
                problem: "is compressed with \(missing), a filter this libhdf5 does not have",
                remedy:
                    "Rewrite the file with gzip compression (h5py: compression='gzip') or none, or install the filter's HDF5 plugin.")
        }
        guard dataset.elementType.isNumeric else {
            throw D4RLError(
                .wrongType, file: file.path, key: key, problem: "holds \(dataset.elementType), not numbers",
                remedy: "Store this key as a float, integer or bool array.")
        }
        guard ranks.contains(dataset.rank) else {
            let expected = ranks.map { $0 == 1 ? "(N,)" : "(N, width)" }.joined(separator: " or ")
            throw D4RLError(
                .wrongRank, file: file.path, key: key,
                problem: "has shape \(dataset.shape) (rank \(dataset.rank)); expected \(expected)",
                remedy: "Store one row per step.")
        }
        // Judged by what the file declares before anything is allocated for it.
        if let problem = dataset.declaredSizeProblem(rows: dataset.rowCount) {
            throw D4RLError(
                .tooLarge, file: file.path, key: key, problem: problem,
                remedy: "Do not use this file: download or write it again from a trusted source.")
        }
        return dataset
    }

    /// Reads each float column or matrix straight into its buffer (rows × width).
    func readSteps(into buffers: StepTableBuffers) throws {
        func read(_ key: String, into buffer: UnsafeMutableBufferPointer<Float>) throws {
            try Self.damaged(path, key: key, "cannot be read") { try file.dataset(key).readRows(0..<steps, into: buffer) }
        }
        try read("observations", into: buffers.observations)
        try read("actions", into: buffers.actions)
        try read("rewards", into: buffers.rewards)
        if let next = buffers.nextObservations { try read("next_observations", into: next) }
    }

    /// Reads a flag column (bool, integer or float) as booleans.
    func readFlags(_ key: String) throws -> [Bool] {
        try Self.damaged(path, key: key, "cannot be read") { try file.dataset(key).readBooleans() }
    }

    /// Runs `body` on `key` of `file`: an HDF5 failure there, after the layout checks passed,
    /// means the file is damaged, and becomes the D4RL error that says so.
    private static func damaged<T>(_ file: String, key: String, _ problem: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as HDF5Error {
            // A compression filter libhdf5 lacks (h5py's lzf, blosc) is not damage.
            if error.stack.contains(where: { $0.lowercased().contains("filter") }) {
                throw D4RLError(
                    .unreadableFile, file: file, key: key,
                    problem:
                        "\(problem): it is compressed with a filter this libhdf5 does not have (\(error.stack.last ?? "unknown filter"))",
                    remedy: "Rewrite the file with gzip compression (h5py: compression='gzip') or none; d4rl-run slice writes gzip.")
            }
            throw D4RLError(
                .unreadableFile, file: file, key: key, problem: "\(problem) (\(error.stack.last ?? "unknown cause"))",
                remedy: "The file is probably truncated or corrupt: download or write it again.")
        }
    }
}

/// A dataset opened and checked, that can fill D4RL's step table: one row per step, episodes
/// in order, each ending on a terminal or timeout flag. D4RL files and Minari datasets are the
/// two kinds.
protocol StepTableSource {
    /// The name the data was given by, for messages.
    var path: String { get }
    var steps: Int { get }
    var observationDimension: Int { get }
    var actionDimension: Int { get }
    /// Whether the data records timeouts (D4RL v0 files do not).
    var hasTimeouts: Bool { get }
    var hasNextObservations: Bool { get }
    var metadata: [String: D4RLMetadataValue] { get }
    /// Fills every array of the step table in one pass over the data (`steps` rows each).
    /// One pass, because a Minari dataset is one group per episode: reading key by key would
    /// open each episode's arrays once per key, and its observations twice.
    func readSteps(into buffers: StepTableBuffers) throws
    /// Reads `terminals` or `timeouts`, one flag per step.
    func readFlags(_ key: String) throws -> [Bool]
}

/// The arrays one `StepTableSource.readSteps(into:)` fills, each `steps` rows of its width,
/// allocated (and their total checked against memory) by the loader before any is read.
struct StepTableBuffers {
    var observations: UnsafeMutableBufferPointer<Float>
    var actions: UnsafeMutableBufferPointer<Float>
    var rewards: UnsafeMutableBufferPointer<Float>
    /// Nil when the loader was asked not to load next observations.
    var nextObservations: UnsafeMutableBufferPointer<Float>?
}

extension HDF5Dataset {
    /// The number of dimensions (0 for a scalar).
    public var rank: Int { shape.count }
}
