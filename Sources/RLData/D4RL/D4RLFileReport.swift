/// What `d4rl-run inspect` reports about one file: its keys, episodes, returns and, when the
/// environment is known, the D4RL normalized score of the data itself.
public struct D4RLFileReport: Codable, Sendable {
    /// One dataset in the file.
    public struct Key: Codable, Sendable, Equatable {
        /// The key's path from the root, e.g. `infos/qpos`.
        public var path: String
        /// The dimensions.
        public var shape: [Int]
        /// The element type, e.g. `float32`.
        public var dtype: String
        /// Chunk shape, or nil for contiguous storage.
        public var chunks: [Int]?
        /// The filter pipeline, e.g. `["shuffle", "gzip(4)"]`.
        public var filters: [String]
    }

    /// Episode counts by how they ended.
    public struct Episodes: Codable, Sendable, Equatable {
        /// All episodes.
        public var total: Int
        /// Episodes ended by a terminal flag.
        public var terminated: Int
        /// Ended by a timeout flag, or by the step limit in files without `timeouts`.
        public var truncated: Int
        /// The trailing partial episode, if the file ends without a flag (0 or 1 per file).
        public var unfinished: Int

        /// Creates counts; see the properties for the meaning of each value.
        public init(total: Int, terminated: Int, truncated: Int, unfinished: Int) {
            self.total = total
            self.terminated = terminated
            self.truncated = truncated
            self.unfinished = unfinished
        }
    }

    /// The file or Minari dataset reported on.
    public var file: String
    /// Its arrays (for a Minari dataset, those of its first episode).
    public var keys: [Key]
    /// The number of steps.
    public var steps: Int
    /// Episode counts by how they ended.
    public var episodes: Episodes
    /// Undiscounted episode returns.
    public var returns: SummaryStatistics
    /// Episode lengths.
    public var lengths: SummaryStatistics
    /// Width of an observation.
    public var observationDimension: Int
    /// Width of an action.
    public var actionDimension: Int
    /// The environment the returns are scored as, if known: its name (`hopper`,
    /// `walker2d-v5`), or the id the data names when the catalog was not asked.
    public var environment: String?
    /// The environment's gymnasium id (`Hopper-v4`, `Walker2d-v5`), when the catalog knows it.
    public var environmentID: String?
    /// Where the environment name came from: a metadata key, `--env`, or the file name.
    public var environmentSource: String?
    /// The returns' mean, std, min and max as D4RL normalized scores (×100), if the
    /// environment is known.
    public var normalizedReturns: SummaryStatistics?
    /// `metadata/*` scalars.
    public var metadata: [String: D4RLMetadataValue]

    /// The environment a report scores the data as, and where that came from.
    public struct Scoring: Sendable, Equatable {
        /// The environment's name (`hopper`), or the D4RL task when no environment is known.
        public var environment: String
        /// Its gymnasium id (`Hopper-v4`), when known.
        public var environmentID: String?
        /// Where the name came from: `--env`, `metadata` or `file name`.
        public var source: String
        /// The pair the returns are normalized with; nil to leave them unscored.
        public var scores: D4RLReferenceScores?

        /// Creates a scoring; see the properties for the meaning of each value.
        public init(environment: String, environmentID: String? = nil, source: String, scores: D4RLReferenceScores?) {
            self.environment = environment
            self.environmentID = environmentID
            self.source = source
            self.scores = scores
        }
    }

    /// Summarizes `dataset`, loaded from `file`, scored as `scoring` says (nil: unscored).
    /// `d4rl-run inspect` resolves the environment through the environment catalog, which
    /// also checks its widths against the data's.
    public init(file: String, dataset: D4RLDataset, scoring: Scoring?) throws {
        self.file = file
        keys = try D4RLFileReport.listKeys(file)
        steps = dataset.count
        let endings = dataset.trajectories.map(\.ending)
        episodes = Episodes(
            total: endings.count, terminated: endings.filter { $0 == .terminated }.count,
            truncated: endings.filter { $0 == .truncated }.count,
            unfinished: endings.filter { $0 == .unfinished }.count)
        returns = dataset.returnStatistics
        lengths = dataset.lengthStatistics
        observationDimension = dataset.observationDimension
        actionDimension = dataset.actionDimension
        metadata = dataset.metadata.first ?? [:]
        environment = scoring?.environment
        environmentID = scoring?.environmentID
        environmentSource = scoring?.source
        if let scores = scoring?.scores {
            normalizedReturns = SummaryStatistics(dataset.trajectories.map { scores.normalize($0.totalReward) })
        }
    }

    /// Loads `file` and summarizes it, scored with the data's own reference returns, else
    /// D4RL's pair for the task its metadata or, failing that, its file name
    /// (`hopper-medium-v2.hdf5`) names. Widths are not checked against an environment here.
    public init(file: String, options: D4RLLoadOptions = D4RLLoadOptions()) throws {
        let dataset = try D4RLDataset(file: file, options: options)
        let fileName = file.split(separator: "/").last.map(String.init) ?? file
        let named: (id: String, source: String)? =
            dataset.environmentID.map { ($0, "metadata") } ?? (D4RLReferenceScores.task(ofID: fileName).map { ($0, "file name") })
        let scoring = named.map { named in
            Scoring(
                environment: named.id, source: named.source,
                scores: dataset.recordedReferenceScores ?? D4RLReferenceScores.forID(named.id))
        }
        try self.init(file: file, dataset: dataset, scoring: scoring)
    }

    /// Every dataset in the file with its shape, type and storage. For a Minari dataset, whose
    /// episodes all hold the same keys, the keys of its first group only.
    public static func listKeys(_ file: String) throws -> [Key] {
        let source = try DatasetSource.resolve(file)
        let handle = try HDF5File.open(source.hdf5Path)
        let under = try keysGroup(of: source, in: handle)
        return try handle.entries(under: under).filter { $0.kind == .dataset }.map { entry in
            let dataset = try handle.dataset(entry.path)
            return Key(
                path: entry.path, shape: dataset.shape, dtype: dataset.elementType.description,
                chunks: dataset.chunkShape, filters: dataset.filters.map(\.description))
        }
    }

    /// The group whose keys stand for the file's: the root of a D4RL file, the first episode
    /// of a Minari dataset (its episodes all hold the same keys).
    static func keysGroup(of source: DatasetSource, in file: HDF5File) throws -> String {
        guard case .minari = source else { return "" }
        return try file.memberNames(of: "").sorted(by: episodeOrder).first ?? ""
    }

    /// Minari's group names in episode order (`episode_2` before `episode_10`).
    static func episodeOrder(_ a: String, _ b: String) -> Bool {
        let numberA = Int(a.split(separator: "_").last ?? "") ?? Int.max
        let numberB = Int(b.split(separator: "_").last ?? "") ?? Int.max
        return numberA == numberB ? a < b : numberA < numberB
    }
}
