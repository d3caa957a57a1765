/// Choices made while loading a D4RL file.
public struct D4RLLoadOptions: Sendable, Equatable {
    /// Where files without a `timeouts` key (D4RL v0) end an episode that never terminates.
    public var maxEpisodeSteps: Int
    /// Whether to load `next_observations` (when present). Off by default: sequence models
    /// do not need it, and it is as large as `observations`.
    public var loadNextObservations: Bool

    /// Creates options; see the properties for the meaning of each value.
    public init(maxEpisodeSteps: Int = 1000, loadNextObservations: Bool = false) {
        self.maxEpisodeSteps = maxEpisodeSteps
        self.loadNextObservations = loadNextObservations
    }
}

/// A D4RL dataset loaded into memory: one flat copy of each array, split into trajectories.
///
/// Rows keep the files' order, which is trajectory order: each trajectory is a contiguous
/// range of rows, and the per-trajectory accessors return views (array slices that share the
/// dataset's storage), never copies. Several files (e.g. medium then expert) concatenate; an
/// episode never spans two files.
///
/// Every variant of the schema loads:
/// - v0 files without `timeouts`: an episode ends at a terminal, or after
///   `options.maxEpisodeSteps` steps, which is then recorded as `.truncated`;
/// - float64 arrays (medium-replay), read straight into `Float`;
/// - rewards stored as (N, 1);
/// - terminals and timeouts stored as bool, uint8 or float;
/// - files with or without `next_observations`;
/// - a trailing partial episode (no flag on the last row): kept, with ending `.unfinished`.
public struct D4RLDataset: Sendable {
    /// The files the rows came from, in order.
    public let files: [String]
    /// Width of one observation (S).
    public let observationDimension: Int
    /// Width of one action (A).
    public let actionDimension: Int
    /// The number of steps (rows), N.
    public let count: Int
    /// Observations, N × S, row-major.
    public let observations: [Float]
    /// Actions, N × A, row-major.
    public let actions: [Float]
    /// Rewards, N.
    public let rewards: [Float]
    /// `terminals`, N.
    public let terminals: [Bool]
    /// `timeouts`, N (all false for files that have none).
    public let timeouts: [Bool]
    /// Next observations, N × S, when loaded (`D4RLLoadOptions.loadNextObservations`).
    public let nextObservations: [Float]?
    /// The episodes, in row order.
    public let trajectories: [Trajectory]
    /// The first row of each file, plus `count` at the end.
    public let fileRowOffsets: [Int]
    /// Each file's `metadata/*` scalars (strings and numbers), keyed by path below `metadata/`.
    public let metadata: [[String: D4RLMetadataValue]]

    /// Loads one file.
    public init(file: String, options: D4RLLoadOptions = D4RLLoadOptions()) throws {
        try self.init(files: [file], options: options)
    }

    /// Loads several datasets and concatenates them in order (for example medium + expert).
    ///
    /// Each name is a D4RL file or a Minari dataset (its folder, or its id under
    /// `$MINARI_DATASETS_PATH`), resolved by `DatasetSource.resolve(_:)`; a Minari dataset
    /// becomes the same step table a D4RL file does (see `MinariDatasetLayout`).
    ///
    /// - Throws: `D4RLError` naming the file and key when a file is missing, unreadable,
    ///   breaks the schema, holds NaN or infinity, is empty, or has no complete episode.
    public init(files: [String], options: D4RLLoadOptions = D4RLLoadOptions()) throws {
        precondition(!files.isEmpty, "D4RLDataset needs at least one file")
        let sources: [any StepTableSource] = try files.map { name in
            switch try DatasetSource.resolve(name) {
            case .d4rlFile(let path): return try D4RLFileLayout(path: path)
            case .minari(let data): return try MinariDatasetLayout(name: name, dataFolder: data)
            }
        }
        try self.init(layouts: sources, options: options)
    }

    /// Loads a D4RL file held in memory (an HDF5 file image); `name` stands for it in errors.
    /// The same checks apply as to a file on disk.
    public init(fileImage: [UInt8], name: String, options: D4RLLoadOptions = D4RLLoadOptions()) throws {
        try self.init(layouts: [try D4RLFileLayout(image: fileImage, name: name)], options: options)
    }

    private init(layouts: [any StepTableSource], options: D4RLLoadOptions) throws {
        let files = layouts.map(\.path)
        let first = layouts[0]
        for layout in layouts.dropFirst() {
            for (key, mine, theirs) in [
                ("observations", layout.observationDimension, first.observationDimension),
                ("actions", layout.actionDimension, first.actionDimension),
            ] where mine != theirs {
                throw D4RLError(
                    .dimensionMismatch, file: layout.path, key: key,
                    problem: "rows are \(mine) wide, but '\(first.path)' has \(theirs)",
                    remedy: "Concatenate only datasets of the same environment.")
            }
        }
        let loadNext = options.loadNextObservations && layouts.allSatisfy(\.hasNextObservations)
        var offsets = [0]
        for layout in layouts { offsets.append(offsets[offsets.count - 1] &+ layout.steps) }
        let total = offsets[offsets.count - 1]
        let stateWidth = first.observationDimension
        let actionWidth = first.actionDimension
        // Sizes come from the files: check what they add up to before allocating any of it.
        let floatsPerStep = 2 * stateWidth + actionWidth + 1 + 2  // observations (twice with next), actions, rewards, flags
        let limit = HDF5Dataset.readLimitBytes
        if offsets.contains(where: { $0 < 0 }) || total > limit / 4 / max(floatsPerStep, 1) {
            let declared = layouts.map { "\($0.path): \($0.steps) steps" }.joined(separator: ", ")
            throw D4RLError(
                .tooLarge, file: layouts.count == 1 ? first.path : declared, key: "observations",
                problem:
                    "declares \(layouts.count == 1 ? "\(first.steps) steps" : "these steps") of \(stateWidth) + \(actionWidth) values, more than this machine's \(limit >> 20) MiB of memory can hold",
                remedy: "Load fewer files at once, or cut the file with `d4rl-run slice`; if the size is wrong, the file is corrupt.")
        }

        // One allocation per array for all files; each file reads straight into its rows.
        var observations = [Float](repeating: 0, count: total * stateWidth)
        var actions = [Float](repeating: 0, count: total * actionWidth)
        var rewards = [Float](repeating: 0, count: total)
        var nextObservations = [Float](repeating: 0, count: loadNext ? total * stateWidth : 0)
        try observations.withUnsafeMutableBufferPointer { observations in
            try actions.withUnsafeMutableBufferPointer { actions in
                try rewards.withUnsafeMutableBufferPointer { rewards in
                    try nextObservations.withUnsafeMutableBufferPointer { next in
                        for (index, layout) in layouts.enumerated() {
                            let rows = offsets[index]..<offsets[index + 1]
                            func part(_ buffer: UnsafeMutableBufferPointer<Float>, width: Int) -> UnsafeMutableBufferPointer<Float> {
                                UnsafeMutableBufferPointer(rebasing: buffer[(rows.lowerBound * width)..<(rows.upperBound * width)])
                            }
                            try layout.readSteps(
                                into: StepTableBuffers(
                                    observations: part(observations, width: stateWidth),
                                    actions: part(actions, width: actionWidth), rewards: part(rewards, width: 1),
                                    nextObservations: loadNext ? part(next, width: stateWidth) : nil))
                        }
                    }
                }
            }
        }
        self.observations = observations
        self.actions = actions
        self.rewards = rewards
        self.nextObservations = loadNext ? nextObservations : nil
        var terminals: [Bool] = []
        var timeouts: [Bool] = []
        terminals.reserveCapacity(total)
        timeouts.reserveCapacity(total)
        for layout in layouts {
            terminals += try layout.readFlags("terminals")
            timeouts +=
                layout.hasTimeouts
                ? try layout.readFlags("timeouts") : [Bool](repeating: false, count: layout.steps)
        }
        self.terminals = terminals
        self.timeouts = timeouts

        for (index, layout) in layouts.enumerated() {
            let rows = offsets[index]..<offsets[index + 1]
            try D4RLDataset.requireFinite(
                observations, width: stateWidth, rows: rows, key: "observations", file: layout.path)
            try D4RLDataset.requireFinite(actions, width: actionWidth, rows: rows, key: "actions", file: layout.path)
            try D4RLDataset.requireFinite(rewards, width: 1, rows: rows, key: "rewards", file: layout.path)
        }

        var trajectories: [Trajectory] = []
        for (index, layout) in layouts.enumerated() {
            let split = D4RLDataset.split(
                rows: offsets[index]..<offsets[index + 1], terminals: terminals, timeouts: timeouts,
                rewards: rewards, episodeLimit: layout.hasTimeouts ? nil : options.maxEpisodeSteps,
                fileIndex: index)
            guard split.contains(where: { $0.ending != .unfinished }) else {
                throw D4RLError(
                    .noCompleteEpisodes, file: layout.path, key: "terminals",
                    problem:
                        "no step of the \(layout.steps) has a terminal or timeout flag, so the file holds no complete episode",
                    remedy:
                        "Check that 'terminals' and 'timeouts' were written; a recorder must flag the last step of every episode."
                )
            }
            trajectories += split
        }
        self.trajectories = trajectories
        self.files = files
        self.fileRowOffsets = offsets
        self.count = total
        self.observationDimension = stateWidth
        self.actionDimension = actionWidth
        self.metadata = layouts.map(\.metadata)
    }

    /// Splits rows into episodes on `terminals || timeouts` (and, for v0 files, at the limit).
    static func split(
        rows: Range<Int>, terminals: [Bool], timeouts: [Bool], rewards: [Float], episodeLimit: Int?,
        fileIndex: Int
    ) -> [Trajectory] {
        var result: [Trajectory] = []
        var start = rows.lowerBound
        var total = 0.0
        for row in rows {
            total += Double(rewards[row])
            let length = row - start + 1
            let ending: TrajectoryEnding?
            if terminals[row] {
                ending = .terminated
            } else if timeouts[row] || length == episodeLimit {
                ending = .truncated
            } else {
                ending = nil
            }
            if let ending {
                result.append(
                    Trajectory(start: start, length: length, ending: ending, totalReward: total, fileIndex: fileIndex))
                start = row + 1
                total = 0
            }
        }
        if start < rows.upperBound {
            result.append(
                Trajectory(
                    start: start, length: rows.upperBound - start, ending: .unfinished, totalReward: total,
                    fileIndex: fileIndex))
        }
        return result
    }

    private static func requireFinite(
        _ values: [Float], width: Int, rows: Range<Int>, key: String, file: String
    ) throws {
        let elements = (rows.lowerBound * width)..<(rows.upperBound * width)
        guard let bad = values[elements].firstIndex(where: { !$0.isFinite }) else { return }
        let row = bad / width - rows.lowerBound
        // Values are read as float32: a finite float64 beyond ±3.4·10³⁸ arrives as infinity.
        let range = values[bad].isInfinite ? " as float32 (NaN or infinity, or a number beyond float32's ±3.4e38)" : ""
        throw D4RLError(
            .nonFinite, file: file, key: key,
            problem: "row \(row) holds \(values[bad])\(range) (column \(bad % width))",
            remedy:
                "Remove or repair the episode that contains it; training on NaN or infinity would poison every weight.")
    }

    // MARK: - Views

    /// The observations of one trajectory: a view of `length × S` values, row-major.
    public func observations(of trajectory: Trajectory) -> ArraySlice<Float> {
        observations[(trajectory.start * observationDimension)..<(trajectory.rows.upperBound * observationDimension)]
    }

    /// The actions of one trajectory: a view of `length × A` values, row-major.
    public func actions(of trajectory: Trajectory) -> ArraySlice<Float> {
        actions[(trajectory.start * actionDimension)..<(trajectory.rows.upperBound * actionDimension)]
    }

    /// The rewards of one trajectory: a view of `length` values.
    public func rewards(of trajectory: Trajectory) -> ArraySlice<Float> {
        rewards[trajectory.rows]
    }
}
