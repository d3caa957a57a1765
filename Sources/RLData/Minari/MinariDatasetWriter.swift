#if canImport(Glibc)
    import Glibc
#endif

/// Records steps from a simulator as a Minari dataset, the format the Farama Foundation's
/// `minari` package (D4RL's successor) loads with `minari.load_dataset(id)`.
///
/// Steps are appended as for `TrajectoryWriter`; each episode (closed by a terminal or
/// timeout flag) is written as one group when it ends, so memory holds one episode at a time.
/// Everything is written under `DATASET/data.partial` and renamed to `DATASET/data` only by
/// `finish()`, so a crash or an error never leaves a half-written dataset under the final name,
/// and an existing dataset is never replaced.
///
/// Layout written (as minari 0.5 writes it with `data_format="hdf5"`): `data/metadata.json`
/// (spaces and `env_spec` as JSON strings, counts, `dataset_id`, `minari_version`, reference
/// scores when given) and `data/main_data.hdf5` with one group `episode_<id>` per episode,
/// attributes `id` and `total_steps`; in it `observations` (T + 1 rows: the reset observation,
/// then every next observation), `actions` (T, A), `rewards` (T,) float64, `terminations` and
/// `truncations` (T,) bool. Observations and actions are stored at their spaces' dtype: float64
/// for a float64 Box (append with `appendFloat64` to keep every digit), float32 otherwise and
/// by default. Every array is contiguous, as h5py stores it. A Dict observation space
/// (`Configuration.observationSpace`) is stored as one dataset per key under `observations/`,
/// each taking its columns of the flat observation (`MinariSpace.leaves`).
public final class MinariDatasetWriter {
    /// What the writer records, and how the dataset describes itself.
    public struct Configuration: Sendable, Equatable {
        /// Width of one (flat) observation.
        public var observationDimension: Int
        /// Width of one action.
        public var actionDimension: Int
        /// The dataset id, `namespace/name-vN` (e.g. `mysim/pendulum/expert-v0`).
        public var datasetID: String
        /// The gymnasium id of the environment (e.g. `Hopper-v4`), recorded as `env_spec`;
        /// nil for an environment gymnasium does not know.
        public var environmentID: String?
        /// The observation space; nil is a float32 Box of `observationDimension` values. A Dict
        /// space splits each observation into its keys' columns.
        public var observationSpace: MinariSpace?
        /// The action space: a Box of `actionDimension` values; float32 when nil. A float64
        /// Box stores actions in float64 (pass them as `Double` to keep every digit).
        public var actionSpace: MinariSpace?
        /// The reference returns that normalize scores (`ref_min_score`, `ref_max_score`).
        public var referenceScores: D4RLReferenceScores?
        /// Who or what produced the actions, recorded as `algorithm_name`.
        public var algorithmName: String?
        /// A sentence about the data, recorded as `description`.
        public var description: String?

        /// Creates a configuration; see the properties for the meaning of each value.
        public init(
            observationDimension: Int, actionDimension: Int, datasetID: String, environmentID: String? = nil,
            observationSpace: MinariSpace? = nil, actionSpace: MinariSpace? = nil,
            referenceScores: D4RLReferenceScores? = nil, algorithmName: String? = nil, description: String? = nil
        ) {
            self.observationDimension = observationDimension
            self.actionDimension = actionDimension
            self.datasetID = datasetID
            self.environmentID = environmentID
            self.observationSpace = observationSpace
            self.actionSpace = actionSpace
            self.referenceScores = referenceScores
            self.algorithmName = algorithmName
            self.description = description
        }
    }

    /// The minari release whose layout this writer follows.
    public static let minariVersion = "0.5.4"

    /// The dataset's folder; `data/` appears in it when `finish()` succeeds.
    public let folder: String
    /// What is recorded.
    public let configuration: Configuration
    /// Steps appended so far.
    public private(set) var stepCount = 0
    /// Episodes written so far (an episode is written when its last step is appended).
    public private(set) var episodeCount = 0

    private let observationSpace: MinariSpace
    private let actionSpace: MinariSpace
    private var file: HDF5File?
    // Held in Double whatever is appended: float32 values convert exactly, and each array is
    // stored at its space's dtype.
    private var observations: [Double] = []
    private var actions: [Double] = []
    private var rewards: [Double] = []
    private var terminations: [UInt8] = []
    private var truncations: [UInt8] = []

    private var dataPath: String { DatasetSource.join(folder, "data") }
    private var partialPath: String { DatasetSource.join(folder, "data.partial") }

    /// Starts a recording of the dataset that will live in `folder` (by Minari's convention
    /// `$MINARI_DATASETS_PATH/<dataset id>`; missing parent folders are created).
    ///
    /// - Throws: `D4RLError.writeFailed` when `folder/data` exists already (a dataset is never
    ///   overwritten), a width is not positive, the space does not match the width, or the
    ///   folder cannot be created.
    public init(folder: String, configuration: Configuration) throws {
        self.folder = folder
        self.configuration = configuration
        let space = configuration.observationSpace ?? .box(shape: [configuration.observationDimension], dtype: "float32")
        observationSpace = space
        actionSpace = configuration.actionSpace ?? .box(shape: [configuration.actionDimension], dtype: "float32")
        guard DatasetSource.isMinariID(configuration.datasetID) else {
            throw D4RLError(
                .wrongType, file: folder, key: "datasetID",
                problem: "'\(configuration.datasetID)' is not a dataset id; minari reads it as a folder under its datasets root",
                remedy: "Give a relative name such as mysim/hopper/medium-v0 (no empty, '.' or '..' parts).")
        }
        guard configuration.observationDimension > 0, configuration.actionDimension > 0 else {
            throw D4RLError(
                .writeFailed, file: folder, problem: "cannot record observations or actions of width 0",
                remedy: "Configure positive widths.")
        }
        guard case .box = actionSpace, actionSpace.flatWidth == configuration.actionDimension else {
            throw D4RLError(
                .dimensionMismatch, file: folder, key: "action_space",
                problem: "is not a Box of \(configuration.actionDimension) values, the action width",
                remedy: "Give a Box whose shape holds the action width.")
        }
        guard space.flatWidth == configuration.observationDimension else {
            throw D4RLError(
                .dimensionMismatch, file: folder, key: "observation_space",
                problem: "holds \(space.flatWidth) values but observations are \(configuration.observationDimension) wide",
                remedy: "Make the space's Boxes add up to the observation width.")
        }
        guard DatasetSource.fileKind(dataPath) == .missing else {
            throw D4RLError(
                .writeFailed, file: folder, key: "data",
                problem: "already holds a dataset (\(dataPath)), which a recording never replaces",
                remedy: "Choose another folder or dataset version (…-v1), or delete the old dataset first.")
        }
        try Self.makeFolders(folder)
        unlink(DatasetSource.join(partialPath, "main_data.hdf5"))
        unlink(DatasetSource.join(partialPath, "metadata.json"))
        rmdir(partialPath)
        guard mkdir(partialPath, 0o755) == 0 else {
            throw D4RLError(
                .writeFailed, file: folder, problem: "cannot create \(partialPath) (\(String(cString: strerror(errno))))",
                remedy: "Check that the folder is writable.")
        }
        do {
            file = try HDF5File.create(DatasetSource.join(partialPath, "main_data.hdf5"))
        } catch {
            unlink(DatasetSource.join(partialPath, "main_data.hdf5"))  // created empty before the failure
            rmdir(partialPath)
            throw D4RLError(
                .writeFailed, file: folder, key: "main_data.hdf5", problem: "cannot be created (\(error))",
                remedy: "Check free disk space and permissions.")
        }
    }

    /// Creates `path` and any missing parents.
    private static func makeFolders(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += prefix.isEmpty || prefix.hasSuffix("/") ? String(component) : "/\(component)"
            if DatasetSource.fileKind(prefix) == .directory { continue }
            guard mkdir(prefix, 0o755) == 0 || errno == EEXIST, DatasetSource.fileKind(prefix) == .directory else {
                throw D4RLError(
                    .writeFailed, file: path, problem: "cannot create the folder \(prefix) (\(String(cString: strerror(errno))))",
                    remedy: "Check the path and its permissions.")
            }
        }
    }

    /// Appends one step; the step that carries `terminal` or `timeout` closes its episode,
    /// which is then written.
    ///
    /// - Parameters:
    ///   - observation: the observation the action was taken in. Within an episode it must
    ///     equal the previous step's `nextObservation`: Minari stores one sequence of
    ///     observations per episode.
    ///   - action: the action taken.
    ///   - reward: the step's reward.
    ///   - terminal: the task ended the episode on this step (`terminations`).
    ///   - timeout: the time limit ended it (`truncations`).
    ///   - nextObservation: the observation after the step.
    /// - Throws: `D4RLError` when a width differs from the configuration, a value is NaN or
    ///   infinite, or the observation breaks the episode's sequence; nothing of the step is
    ///   recorded then.
    public func append(
        observation: [Float], action: [Float], reward: Float, terminal: Bool, timeout: Bool = false,
        nextObservation: [Float]
    ) throws {
        try appendFloat64(
            observation: observation.map(Double.init), action: action.map(Double.init), reward: Double(reward),
            terminal: terminal, timeout: timeout, nextObservation: nextObservation.map(Double.init))
    }

    /// Appends one step given in double precision, for spaces of dtype float64 (a simulator's
    /// state, or a copy of a float64 dataset); see `append` for the rules. (A name of its own,
    /// so that `append` with literal arrays is not ambiguous.)
    public func appendFloat64(
        observation: [Double], action: [Double], reward: Double, terminal: Bool, timeout: Bool = false,
        nextObservation: [Double]
    ) throws {
        guard file != nil else {
            throw D4RLError(
                .writeFailed, file: folder, problem: "was finished or abandoned; no more steps can be appended",
                remedy: "Start a new MinariDatasetWriter.")
        }
        let width = configuration.observationDimension
        for (key, row, expected) in [
            ("observations", observation, width), ("actions", action, configuration.actionDimension),
            ("next observations", nextObservation, width), ("rewards", [reward], 1),
        ] {
            guard row.count == expected else {
                throw D4RLError(
                    .dimensionMismatch, file: folder, key: key,
                    problem: "step \(stepCount) has \(row.count) values, the writer was configured for \(expected)",
                    remedy: "Pass one value per dimension, as configured in MinariDatasetWriter.Configuration.")
            }
            if let bad = row.first(where: { !$0.isFinite }) {
                throw D4RLError(
                    .nonFinite, file: folder, key: key, problem: "step \(stepCount) holds \(bad)",
                    remedy: "Record only finite values; end the episode before the simulation diverges.")
            }
        }
        if observations.isEmpty {
            observations = observation
        } else if Array(observations[(observations.count - width)...]) != observation {
            throw D4RLError(
                .writeFailed, file: folder, key: "observations",
                problem:
                    "step \(stepCount) starts from an observation that differs from the previous step's next observation, within one episode",
                remedy: "Flag the previous step terminal or timeout if a new episode began, or pass the same observation.")
        }
        observations += nextObservation
        actions += action
        rewards.append(reward)
        terminations.append(terminal ? 1 : 0)
        truncations.append(timeout ? 1 : 0)
        stepCount += 1
        if terminal || timeout { try writeEpisode() }
    }

    /// Writes the episode in the buffers as group `episode_<episodeCount>`.
    private func writeEpisode() throws {
        guard let file, !rewards.isEmpty else { return }
        let group = "episode_\(episodeCount)"
        let steps = rewards.count
        do {
            try file.createGroup(group)
            try file.setAttribute("id", to: Int64(episodeCount), on: group)
            try file.setAttribute("total_steps", to: Int64(steps), on: group)
            func write<T: HDF5Numeric>(_ key: String, _ values: [T], type: HDF5StorageType, shape: [Int]) throws {
                // Contiguous, as minari (h5py) writes them: an episode is written once, whole.
                let dataset = try file.createDataset("\(group)/\(key)", type: type, shape: shape, layout: .contiguous)
                try values.withUnsafeBufferPointer { try dataset.writeRows(0..<shape[0], from: $0) }
            }
            let width = configuration.observationDimension
            for leaf in observationSpace.leaves {
                let key = leaf.path.isEmpty ? "observations" : "observations/\(leaf.path)"
                var block: [Double] = []
                block.reserveCapacity((steps + 1) * leaf.columns.count)
                for row in 0...steps { block += observations[(row * width + leaf.columns.lowerBound)..<(row * width + leaf.columns.upperBound)] }
                try write(key, block, type: Self.storageType(leaf.dtype), shape: [steps + 1, leaf.columns.count])
            }
            try write("actions", actions, type: Self.storageType(actionSpace.leaves[0].dtype), shape: [steps, configuration.actionDimension])
            try write("rewards", rewards, type: .float64, shape: [steps])
            try write("terminations", terminations, type: .bool, shape: [steps])
            try write("truncations", truncations, type: .bool, shape: [steps])
        } catch let error as HDF5Error {
            throw D4RLError(
                .writeFailed, file: folder, key: error.objectPath, problem: "could not be written (\(error))",
                remedy: "Check free disk space and permissions, then record again.")
        }
        episodeCount += 1
        observations.removeAll(keepingCapacity: true)
        actions.removeAll(keepingCapacity: true)
        rewards.removeAll(keepingCapacity: true)
        terminations.removeAll(keepingCapacity: true)
        truncations.removeAll(keepingCapacity: true)
    }

    /// How a Box of NumPy dtype `dtype` is stored: float64 as float64, anything else as
    /// float32 (what the reader turns every number into).
    private static func storageType(_ dtype: String) -> HDF5StorageType {
        dtype == "float64" ? .float64 : .float32
    }

    /// Writes an unfinished last episode as it is (readers count it as truncated), then
    /// `metadata.json`, closes the file and moves `data.partial` to `data`.
    ///
    /// - Throws: `D4RLError.writeFailed`; the partial folder is deleted then, and `data` is
    ///   untouched.
    public func finish() throws {
        guard let file else { return }
        do {
            try writeEpisode()
            do {
                try file.flush()
            } catch let error as HDF5Error {
                throw D4RLError(
                    .writeFailed, file: folder, key: "main_data.hdf5", problem: "could not be written (\(error))",
                    remedy: "Check free disk space and permissions, then record again.")
            }
            guard episodeCount > 0 else {
                throw D4RLError(
                    .empty, file: folder, problem: "no step was recorded", remedy: "Append at least one step before finish().")
            }
            try writeText(metadataJSON, to: DatasetSource.join(partialPath, "metadata.json"))
        } catch {
            abandon()
            throw error
        }
        self.file = nil  // closes the file before the rename
        try moveRecording(from: partialPath, to: dataPath, named: folder, remedy: "the recording is in data.partial")
    }

    /// Stops recording and deletes the partial folder. An existing `data/` is left untouched.
    public func abandon() {
        file = nil
        unlink(DatasetSource.join(partialPath, "main_data.hdf5"))
        unlink(DatasetSource.join(partialPath, "metadata.json"))
        rmdir(partialPath)
    }

    /// `metadata.json` as minari writes it.
    var metadataJSON: String {
        var members: [(key: String, value: OrderedJSON)] = [
            ("total_episodes", .number(Double(episodeCount))), ("total_steps", .number(Double(stepCount))),
            ("data_format", .string("hdf5")), ("jpeg_encoding", .bool(false)),
            ("observation_space", .string(observationSpace.serialized.serialized)),
            ("action_space", .string(actionSpace.serialized.serialized)),
        ]
        if let id = configuration.environmentID {
            // The fields gymnasium's EnvSpec.from_json needs; the entry point is left to
            // gymnasium's registry, which knows the id.
            let spec: OrderedJSON = .object([
                ("id", .string(id)), ("entry_point", .null), ("reward_threshold", .null), ("nondeterministic", .bool(false)),
                ("max_episode_steps", .null), ("order_enforce", .bool(true)), ("disable_env_checker", .bool(false)),
                ("kwargs", .object([])), ("additional_wrappers", .array([])), ("vector_entry_point", .null),
            ])
            members.append(("env_spec", .string(spec.serialized)))
        }
        members.append(("dataset_id", .string(configuration.datasetID)))
        if let name = configuration.algorithmName { members.append(("algorithm_name", .string(name))) }
        if let text = configuration.description { members.append(("description", .string(text))) }
        members.append(("minari_version", .string(Self.minariVersion)))
        if let scores = configuration.referenceScores {
            members.append(("ref_min_score", .number(scores.minimum)))
            members.append(("ref_max_score", .number(scores.maximum)))
        }
        return OrderedJSON.object(members).serialized
    }

    private func writeText(_ text: String, to path: String) throws {
        guard let handle = fopen(path, "wb") else {
            throw D4RLError(
                .writeFailed, file: path, problem: "cannot be created (\(String(cString: strerror(errno))))",
                remedy: "Check free disk space and permissions.")
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        let flushed = fflush(handle) == 0 && fsync(fileno(handle)) == 0
        let closed = fclose(handle) == 0
        guard written == bytes.count, flushed, closed else {
            throw D4RLError(
                .writeFailed, file: path, problem: "could not be written (\(String(cString: strerror(errno))))",
                remedy: "Check free disk space, then record again.")
        }
    }
}
