#if canImport(Glibc)
    import Glibc
#endif

/// One Minari dataset opened and checked, before any bulk data is read: its metadata, its
/// spaces, and every episode's shapes.
///
/// Minari (the Farama Foundation's successor to D4RL) stores a dataset as `data/metadata.json`
/// and `data/main_data.hdf5`, one group per episode (`episode_<id>`, attribute `id`). Each
/// episode's `observations` has T + 1 rows (the reset observation first, the last step's next
/// observation last); `actions`, `rewards`, `terminations` and `truncations` have T. This
/// layout turns that into D4RL's step table: episodes in `id` order (group names sort as
/// text, `episode_10` before `episode_2`), the first T observation rows as `observations`,
/// rows 1...T as `next_observations`, `terminations` as terminals and `truncations` as
/// timeouts.
struct MinariDatasetLayout: StepTableSource {
    /// One episode's group and its size.
    struct Episode {
        var id: Int
        var group: String
        var steps: Int
    }

    /// The name the dataset was given by (a folder or an id), used in every message.
    let path: String
    let dataFolder: String
    let file: HDF5File
    let episodes: [Episode]
    let steps: Int
    let observationSpace: MinariSpace
    let actionSpace: MinariSpace
    let observationDimension: Int
    let actionDimension: Int
    let hasTimeouts = true
    let hasNextObservations = true
    let metadata: [String: D4RLMetadataValue]
    /// Terminal and timeout flags of every step, read and checked when opening.
    let terminals: [Bool]
    let timeouts: [Bool]

    /// The largest reference score accepted (in size): a return is a sum of rewards over an
    /// episode, far below this for any task.
    static let largestReference = 1e12

    /// The largest `metadata.json` read; real ones are a few kilobytes.
    static let maximumMetadataBytes = 16 << 20

    init(name: String, dataFolder: String) throws {
        path = name
        self.dataFolder = dataFolder
        let metadataPath = DatasetSource.join(dataFolder, "metadata.json")
        // A FIFO or device goes on to `readText`, which refuses it by name.
        guard [.regular, .special].contains(DatasetSource.fileKind(metadataPath)) else {
            throw D4RLError(
                .missingKey, file: name, key: "metadata.json",
                problem: "has no \(metadataPath); a Minari dataset folder holds data/metadata.json and data/main_data.hdf5",
                remedy: "Give the dataset's folder (the one that holds data/), or its id under MINARI_DATASETS_PATH.")
        }
        let json: OrderedJSON
        do {
            json = try OrderedJSON.parse(try MinariDatasetLayout.readText(metadataPath, limit: Self.maximumMetadataBytes))
        } catch let error as OrderedJSON.ParseError {
            throw D4RLError(
                .wrongType, file: name, key: "metadata.json", problem: "is not valid JSON (\(error))",
                remedy: "The dataset's metadata is damaged: download or write the dataset again.")
        }
        guard case .object = json else {
            throw D4RLError(
                .wrongType, file: name, key: "metadata.json", problem: "is not a JSON object",
                remedy: "The dataset's metadata is damaged: download or write the dataset again.")
        }
        let format = json["data_format"]?.stringValue ?? "hdf5"
        guard format == "hdf5" else {
            throw D4RLError(
                .unreadableFile, file: name, key: "data_format",
                problem: "is \"\(format)\"; DecisionFlow reads Minari's hdf5 storage, not \(format)",
                remedy:
                    "Convert it in Python: minari.create_dataset_from_buffers(..., data_format=\"hdf5\") from the episodes of minari.load_dataset(id).")
        }
        observationSpace = try MinariDatasetLayout.space("observation_space", of: json, dataset: name)
        actionSpace = try MinariDatasetLayout.space("action_space", of: json, dataset: name)
        guard case .box = actionSpace else {
            throw D4RLError(
                .wrongType, file: name, key: "action_space",
                problem: "is a Dict space; a Decision Transformer predicts one block of action values",
                remedy: "Record actions as a Box.")
        }
        observationDimension = observationSpace.flatWidth
        actionDimension = actionSpace.flatWidth
        guard observationDimension > 0, actionDimension > 0 else {
            throw D4RLError(
                .empty, file: name, key: observationDimension > 0 ? "action_space" : "observation_space",
                problem: "holds no values", remedy: "Record at least one value per observation and action.")
        }

        let hdf5Path = DatasetSource.join(dataFolder, "main_data.hdf5")
        do {
            file = try HDF5File.open(hdf5Path)
            _ = try file.memberNames(of: "")
        } catch let error as HDF5Error {
            throw D4RLError(
                .unreadableFile, file: name, key: "main_data.hdf5",
                problem: "cannot be opened as HDF5 (\(error.stack.last ?? "unknown cause"))",
                remedy: "Download or write the dataset again; data/main_data.hdf5 is missing, truncated or not HDF5.")
        }
        let declaredEpisodes = try MinariDatasetLayout.count("total_episodes", of: json, dataset: name)
        let declaredSteps = try MinariDatasetLayout.count("total_steps", of: json, dataset: name)
        let scanned = try MinariDatasetLayout.scanEpisodes(
            in: file, dataset: name, declared: declaredEpisodes, observationSpace: observationSpace,
            actionWidth: actionDimension)
        episodes = scanned.map(\.episode)

        var metadata: [String: D4RLMetadataValue] = ["observation_layout": .string(observationSpace.layoutDescription)]
        for key in ["dataset_id", "minari_version", "algorithm_name", "description"] {
            if let text = json[key]?.stringValue { metadata[key] = .string(text) }
        }
        // An id names a folder under the datasets root, as minari resolves it: a relative
        // path that stays there.
        if let id = json["dataset_id"] {
            guard let text = id.stringValue, DatasetSource.isMinariID(text) else {
                throw D4RLError(
                    .wrongType, file: name, key: "metadata.json: dataset_id",
                    problem: "is \(id.summary), not a dataset id (a relative name such as mujoco/hopper/medium-v0)",
                    remedy: "The dataset's metadata is damaged: download or write the dataset again.")
            }
        }
        // Reference scores normalize every return reported for this data: both or neither,
        // finite, and far enough apart that a normalized score is a number.
        let references = ["ref_min_score", "ref_max_score"].map { json[$0] }
        if references[0] != nil || references[1] != nil {
            guard let low = references[0]?.numberValue, let high = references[1]?.numberValue else {
                let missing = references[0]?.numberValue == nil ? "ref_min_score" : "ref_max_score"
                throw D4RLError(
                    .wrongType, file: name, key: "metadata.json: \(missing)",
                    problem: "is missing or not a number, while the other reference score is given",
                    remedy: "Give both ref_min_score and ref_max_score as numbers, or neither (D4RL's references then apply).")
            }
            // Returns are far below 10¹², and references that agree to six digits would turn
            // rounding into scores of ±10¹⁸.
            let limit = Self.largestReference
            guard low.isFinite, high.isFinite, high > low, abs(low) <= limit, abs(high) <= limit,
                high - low >= 1e-6 * max(abs(low), abs(high), 1)
            else {
                throw D4RLError(
                    .wrongType, file: name, key: "metadata.json: ref_min_score",
                    problem:
                        "and ref_max_score are \(low) and \(high); normalized scores need finite references within ±10¹², with the maximum above the minimum by more than rounding",
                    remedy: "Correct the reference scores, or remove both (D4RL's references then apply).")
            }
            metadata["ref_min_score"] = .real(low)
            metadata["ref_max_score"] = .real(high)
        }
        if let specText = json["env_spec"]?.stringValue, let spec = try? OrderedJSON.parse(specText),
            let id = spec["id"]?.stringValue
        {
            metadata["env_id"] = .string(id)
        }
        self.metadata = metadata

        var total = 0
        var terminals: [Bool] = []
        var timeouts: [Bool] = []
        for (episode, flags) in scanned {
            let (sum, overflow) = total.addingReportingOverflow(episode.steps)
            guard !overflow else {
                throw D4RLError(
                    .tooLarge, file: name, key: episode.group, problem: "declares more steps than can be counted",
                    remedy: "The file is corrupt or was forged.")
            }
            total = sum
            terminals += flags.terminals
            timeouts += flags.timeouts
        }
        steps = total
        self.terminals = terminals
        self.timeouts = timeouts
        if let declared = declaredSteps, declared != total {
            throw D4RLError(
                .lengthMismatch, file: name, key: "total_steps",
                problem: "metadata.json declares \(declared) steps but the episodes hold \(total)",
                remedy: "The dataset was written incompletely: write or download it again.")
        }
    }

    /// A count `metadata.json` declares (`total_episodes`, `total_steps`): nil when absent, and
    /// refused, naming the key, when it is not a whole number from 0 up.
    static func count(_ key: String, of json: OrderedJSON, dataset: String) throws -> Int? {
        guard let value = json[key] else { return nil }
        guard let count = value.integerValue else {
            throw D4RLError(
                .wrongType, file: dataset, key: "metadata.json: \(key)",
                problem: "is \(value.summary), not a count (a whole number from 0)",
                remedy: "The dataset's metadata is damaged: download or write the dataset again.")
        }
        return count
    }

    /// Reads a small text file whole, refusing one larger than `limit` bytes, and anything
    /// that is not a regular file (a FIFO would block the reader for ever).
    static func readText(_ path: String, limit: Int) throws -> String {
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG {
            throw D4RLError(
                .unreadableFile, file: path, problem: "is not a regular file (a folder, FIFO or device)",
                remedy: "Replace it with the dataset's metadata file.")
        }
        guard let handle = fopen(path, "rb") else {
            throw D4RLError(
                .unreadableFile, file: path, problem: "cannot be read (\(String(cString: strerror(errno))))",
                remedy: "Check its permissions.")
        }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, handle) }
            if count == 0 { break }
            bytes += chunk[0..<count]
            guard bytes.count <= limit else {
                throw D4RLError(
                    .tooLarge, file: path, problem: "is larger than \(limit >> 20) MiB, far more than any dataset metadata",
                    remedy: "The file is corrupt or is not Minari metadata.")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func space(_ key: String, of json: OrderedJSON, dataset: String) throws -> MinariSpace {
        guard let text = json[key]?.stringValue else {
            throw D4RLError(
                .missingKey, file: dataset, key: "metadata.json: \(key)",
                problem: "is missing; Minari records each space as a JSON string",
                remedy: "Write the dataset with minari (or MinariDatasetWriter), which records both spaces.")
        }
        do {
            return try MinariSpace.parse(try OrderedJSON.parse(text))
        } catch let error as OrderedJSON.ParseError {
            throw D4RLError(
                .wrongType, file: dataset, key: "metadata.json: \(key)", problem: "is not valid JSON (\(error))",
                remedy: "The dataset's metadata is damaged: download or write the dataset again.")
        } catch let error as MinariSpace.SpaceProblem {
            throw D4RLError(
                .wrongType, file: dataset, key: "metadata.json: \(key)", problem: "is a space that cannot be read: it \(error.problem)",
                remedy: "Use a dataset whose spaces are Boxes or Dicts of Boxes (flatten others in Python before recording).")
        }
    }

    /// What the first pass learns of one episode: its group and size, and its flag arrays.
    typealias ScannedEpisode = (episode: Episode, flags: (terminals: [Bool], timeouts: [Bool]))

    /// Every `episode_*` group, in id order, with its shapes checked against the spaces and its
    /// flags read. One pass opens each of an episode's arrays once; the bulk data waits for
    /// `readSteps(into:)`, after the loader has checked the total against memory.
    private static func scanEpisodes(
        in file: HDF5File, dataset name: String, declared: Int?, observationSpace: MinariSpace, actionWidth: Int
    ) throws -> [ScannedEpisode] {
        var scanned: [ScannedEpisode] = []
        for group in try file.memberNames(of: "") where file.kind(of: group) == .group {
            guard let attribute = try? file.attribute("id", of: group),
                // An integer type: a float id (1.5) would be read as another episode's (1).
                case .integer = attribute.elementType,
                let values = try? attribute.readArray(as: Int64.self), values.count == 1, values[0] >= 0,
                let id = Int(exactly: values[0])
            else {
                throw D4RLError(
                    .missingKey, file: name, key: "\(group)@id",
                    problem: "is missing or is not one non-negative integer (of an integer type); Minari orders episodes by their id attribute",
                    remedy: "Write the dataset with minari (or MinariDatasetWriter), which gives every episode group its id.")
            }
            let actions = try numericArray(in: file, "\(group)/actions", dataset: name)
            let episode = Episode(id: id, group: group, steps: actions.rowCount)
            let flagArrays = try openCheckedArrays(
                of: episode, actions: actions, in: file, dataset: name, observationSpace: observationSpace,
                actionWidth: actionWidth)
            scanned.append((episode, try readEpisodeFlags(episode, flagArrays, dataset: name)))
        }
        scanned.sort { $0.episode.id < $1.episode.id }
        for (previous, next) in zip(scanned, scanned.dropFirst()) where previous.episode.id == next.episode.id {
            throw D4RLError(
                .lengthMismatch, file: name, key: "\(next.episode.group)@id",
                problem: "repeats the id \(next.episode.id) of \(previous.episode.group)",
                remedy: "The file is corrupt: write it again.")
        }
        guard !scanned.isEmpty else {
            throw D4RLError(
                .empty, file: name, key: "main_data.hdf5", problem: "holds no episode groups",
                remedy: "Use a dataset with at least one complete episode.")
        }
        if let declared, declared != scanned.count {
            throw D4RLError(
                .lengthMismatch, file: name, key: "total_episodes",
                problem: "metadata.json declares \(declared) episodes but main_data.hdf5 holds \(scanned.count)",
                remedy: "The dataset was written incompletely: write or download it again.")
        }
        return scanned
    }

    /// Opens a numeric dataset of an episode, or explains why it cannot be used.
    private static func numericArray(in file: HDF5File, _ key: String, dataset name: String) throws -> HDF5Dataset {
        // Opened first, and asked what is there only when that fails: most datasets have tens
        // of thousands of episodes, and every lookup is paid once per episode.
        guard let dataset = try? file.dataset(key) else {
            guard file.kind(of: key) == .dataset else {
                throw D4RLError(
                    .missingKey, file: name, key: key,
                    problem: "is missing; every Minari episode holds observations, actions, rewards, terminations and truncations",
                    remedy: "The dataset was written incompletely: write or download it again.")
            }
            throw D4RLError(
                .unreadableFile, file: name, key: key, problem: "cannot be opened",
                remedy: "The file is probably truncated or corrupt: download or write it again.")
        }
        if let missing = dataset.filters.first(where: { !$0.isAvailable }) {
            throw D4RLError(
                .unreadableFile, file: name, key: key,
                problem: "is compressed with \(missing), a filter this libhdf5 does not have",
                remedy: "Rewrite the dataset with gzip compression or none.")
        }
        guard dataset.elementType.isNumeric, dataset.rank >= 1 else {
            throw D4RLError(
                .wrongType, file: name, key: key, problem: "holds \(dataset.elementType) of shape \(dataset.shape), not rows of numbers",
                remedy: "Store one row of numbers per step.")
        }
        // Judged by what the file declares before anything is allocated for it.
        if let problem = dataset.declaredSizeProblem(rows: dataset.rowCount) {
            throw D4RLError(
                .tooLarge, file: name, key: key, problem: problem,
                remedy: "Do not use this dataset: download or write it again from a trusted source.")
        }
        return dataset
    }

    /// Opens an episode's arrays and checks that they have the spaces' widths and agree on T;
    /// returns its `terminations` and `truncations`, still open, for the flags to be read.
    private static func openCheckedArrays(
        of episode: Episode, actions: HDF5Dataset, in file: HDF5File, dataset name: String,
        observationSpace: MinariSpace, actionWidth: Int
    ) throws -> (terminations: HDF5Dataset, truncations: HDF5Dataset) {
        let group = episode.group
        let t = episode.steps
        guard t > 0 else {
            throw D4RLError(
                .empty, file: name, key: "\(group)/actions", problem: "holds no steps",
                remedy: "Remove the empty episode; every episode needs at least one step.")
        }
        @discardableResult
        func expect(_ key: String, rows: Int, width: Int, opened: HDF5Dataset? = nil) throws -> HDF5Dataset {
            let dataset = try opened ?? numericArray(in: file, key, dataset: name)
            guard dataset.rowCount == rows else {
                throw D4RLError(
                    .lengthMismatch, file: name, key: key,
                    problem:
                        "has \(dataset.rowCount) rows but the episode has \(t) actions, so it needs \(rows)\(rows == t + 1 ? " (T + 1: the reset observation and every next observation)" : "")",
                    remedy: "The episode was written inconsistently: write or download the dataset again.")
            }
            guard dataset.rowWidth == width else {
                throw D4RLError(
                    .dimensionMismatch, file: name, key: key,
                    problem: "rows hold \(dataset.rowWidth) values but its space declares \(width)",
                    remedy: "The data does not match metadata.json's spaces: write the dataset again.")
            }
            return dataset
        }
        try expect("\(group)/actions", rows: t, width: actionWidth, opened: actions)
        try expect("\(group)/rewards", rows: t, width: 1)
        let terminations = try expect("\(group)/terminations", rows: t, width: 1)
        let truncations = try expect("\(group)/truncations", rows: t, width: 1)
        for leaf in observationSpace.leaves {
            let key = leaf.path.isEmpty ? "\(group)/observations" : "\(group)/observations/\(leaf.path)"
            try expect(key, rows: t + 1, width: leaf.columns.count)
        }
        return (terminations, truncations)
    }

    /// An episode's flags. Only its last step may carry one; a last step with neither flag
    /// (a recording stopped mid-episode) is marked as a timeout, so the episode stays whole.
    private static func readEpisodeFlags(
        _ episode: Episode, _ flags: (terminations: HDF5Dataset, truncations: HDF5Dataset), dataset name: String
    ) throws -> (terminals: [Bool], timeouts: [Bool]) {
        func read(_ dataset: HDF5Dataset) throws -> [Bool] {
            do {
                return try dataset.readBooleans()
            } catch let error as HDF5Error {
                throw D4RLError(
                    .unreadableFile, file: name, key: dataset.path,
                    problem: "cannot be read (\(error.stack.last ?? "unknown cause"))",
                    remedy: "The file is probably truncated or corrupt: download or write it again.")
            }
        }
        let terminals = try read(flags.terminations)
        var timeouts = try read(flags.truncations)
        for step in 0..<(episode.steps - 1) where terminals[step] || timeouts[step] {
            throw D4RLError(
                .lengthMismatch, file: name, key: "\(episode.group)/\(terminals[step] ? "terminations" : "truncations")",
                problem: "is set at step \(step) of \(episode.steps); an episode ends only at its last step",
                remedy: "Split the recording into one group per episode, as minari does.")
        }
        if !terminals[episode.steps - 1] { timeouts[episode.steps - 1] = true }
        return (terminals, timeouts)
    }

    // MARK: - Bulk reads

    /// Reads episode by episode, each array opened once: the T + 1 observation rows give both
    /// `observations` (rows 0..<T) and `next_observations` (rows 1...T).
    func readSteps(into buffers: StepTableBuffers) throws {
        let width = observationDimension
        var block: [Float] = []  // one episode's observation rows, reused
        var row = 0
        for episode in episodes {
            let t = episode.steps
            if block.count < (t + 1) * width { block = [Float](repeating: 0, count: (t + 1) * width) }
            try block.withUnsafeMutableBufferPointer { block in
                let rows = UnsafeMutableBufferPointer(rebasing: block[0..<((t + 1) * width)])
                try readObservations(of: episode, into: rows)
                let target = UnsafeMutableBufferPointer(rebasing: buffers.observations[(row * width)..<((row + t) * width)])
                _ = target.update(fromContentsOf: rows[0..<(t * width)])
                if let next = buffers.nextObservations {
                    let target = UnsafeMutableBufferPointer(rebasing: next[(row * width)..<((row + t) * width)])
                    _ = target.update(fromContentsOf: rows[width..<((t + 1) * width)])
                }
            }
            let actions = UnsafeMutableBufferPointer(
                rebasing: buffers.actions[(row * actionDimension)..<((row + t) * actionDimension)])
            try reading("\(episode.group)/actions") { try file.dataset($0).readRows(0..<t, into: actions) }
            let rewards = UnsafeMutableBufferPointer(rebasing: buffers.rewards[row..<(row + t)])
            try reading("\(episode.group)/rewards") { try file.dataset($0).readRows(0..<t, into: rewards) }
            row += t
        }
    }

    /// One episode at the precision the file stores it: its T + 1 observation rows (flattened),
    /// T action rows and T rewards. For copies that must keep every digit (`DatasetSlice`).
    func readExactly(_ episode: Episode) throws -> (observations: [Double], actions: [Double], rewards: [Double]) {
        let t = episode.steps
        var observations = [Double](repeating: 0, count: (t + 1) * observationDimension)
        try observations.withUnsafeMutableBufferPointer { try readObservations(of: episode, into: $0) }
        let actions = try reading("\(episode.group)/actions") { try file.dataset($0).readRows(0..<t, as: Double.self) }
        let rewards = try reading("\(episode.group)/rewards") { try file.dataset($0).readRows(0..<t, as: Double.self) }
        return (observations, actions, rewards)
    }

    /// Reads all T + 1 observation rows of one episode, flattening a Dict space column block by block.
    private func readObservations<T: HDF5Numeric>(of episode: Episode, into target: UnsafeMutableBufferPointer<T>) throws {
        let rows = 0..<(episode.steps + 1)
        let leaves = observationSpace.leaves
        if leaves.count == 1, leaves[0].path.isEmpty {
            try reading("\(episode.group)/observations") { try file.dataset($0).readRows(rows, into: target) }
            return
        }
        let width = observationDimension
        for leaf in leaves {
            let block = try reading("\(episode.group)/observations/\(leaf.path)") {
                try file.dataset($0).readRows(rows, as: T.self)
            }
            let columns = leaf.columns.count
            for row in 0..<rows.count {
                for column in 0..<columns {
                    target[row * width + leaf.columns.lowerBound + column] = block[row * columns + column]
                }
            }
        }
    }

    /// Runs `body` on `key`; an HDF5 failure there, after the checks passed, means damage.
    private func reading<T>(_ key: String, _ body: (String) throws -> T) throws -> T {
        do {
            return try body(key)
        } catch let error as HDF5Error {
            throw D4RLError(
                .unreadableFile, file: path, key: key, problem: "cannot be read (\(error.stack.last ?? "unknown cause"))",
                remedy: "The file is probably truncated or corrupt: download or write it again.")
        }
    }

    func readFlags(_ key: String) throws -> [Bool] {
        key == "terminals" ? terminals : timeouts
    }
}
