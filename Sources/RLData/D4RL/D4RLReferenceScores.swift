/// D4RL's reference returns, used to report a return as a normalized score.
///
/// `normalized = 100 · (return − minimum) / (maximum − minimum)`: 0 is a random policy, 100
/// an expert. Every gym-MuJoCo dataset of an environment (random, medium, medium-replay,
/// medium-expert, expert; v0, v1 and v2) uses the same pair. Source: D4RL `d4rl/infos.py`.
public struct D4RLReferenceScores: Sendable, Equatable {
    /// The random policy's reference return.
    public var minimum: Double
    /// The expert policy's reference return.
    public var maximum: Double

    /// Creates a pair; `maximum` must exceed `minimum`.
    public init(minimum: Double, maximum: Double) {
        self.minimum = minimum
        self.maximum = maximum
    }

    /// The score of `episodeReturn`, ×100 as papers report it.
    public func normalize(_ episodeReturn: Double) -> Double {
        100 * (episodeReturn - minimum) / (maximum - minimum)
    }

    /// The reference pairs by registry name. gymnasium's v5 environments (`hopper-v5`, ...)
    /// keep their task's pair, as Minari's v5 datasets do.
    public static let byEnvironment: [String: D4RLReferenceScores] = d4rl.merging(
        ["halfcheetah", "hopper", "walker2d", "ant"].compactMap { task in d4rl[task].map { (task + "-v5", $0) } },
        uniquingKeysWith: { first, _ in first })

    /// D4RL's own table (`d4rl/infos.py`).
    private static let d4rl: [String: D4RLReferenceScores] = [
        "halfcheetah": D4RLReferenceScores(minimum: -280.178953, maximum: 12135.0),
        "hopper": D4RLReferenceScores(minimum: -20.272305, maximum: 3234.3),
        "walker2d": D4RLReferenceScores(minimum: 1.629008, maximum: 4592.3),
        "ant": D4RLReferenceScores(minimum: -325.6, maximum: 3879.7),
        "maze2d-umaze": D4RLReferenceScores(minimum: 23.85, maximum: 161.86),
        "maze2d-medium": D4RLReferenceScores(minimum: 13.13, maximum: 277.39),
        "maze2d-large": D4RLReferenceScores(minimum: 6.7, maximum: 273.99),
        "maze2d-open": D4RLReferenceScores(minimum: 0.01, maximum: 20.66),
        "antmaze": D4RLReferenceScores(minimum: 0.0, maximum: 1.0),
    ]

    /// The reference pair of an environment, by registry name or by any gym or D4RL id that
    /// names it (`Hopper-v4`, `hopper-medium-v2`, `HalfCheetah-v3`).
    public static func forEnvironment(_ nameOrID: String) -> D4RLReferenceScores? {
        environmentName(forID: nameOrID).flatMap { byEnvironment[$0] }
    }

    /// Maps a gym or D4RL id (`Hopper-v4`, `halfcheetah-medium-v2`, `half_cheetah`) to the
    /// registry name (`hopper`, `halfcheetah`), or nil for an environment D4RL does not score.
    /// A gymnasium id of version 5 (`Walker2d-v5`) keeps its version (`walker2d-v5`): its
    /// physics and rewards differ. In a D4RL dataset id (`walker2d-medium-v2`) the version is
    /// the dataset's, and the environment is gym's v3 (gymnasium's v4).
    public static func environmentName(forID id: String) -> String? {
        let lowered = String(id.lowercased().filter { $0 != "_" })
        if lowered.hasPrefix("maze2d") {
            for size in ["umaze", "medium", "large", "open"] where lowered.contains(size) {
                return "maze2d-\(size)"
            }
            return nil
        }
        if lowered.hasPrefix("antmaze") { return "antmaze" }
        let parts = lowered.split(separator: "-", omittingEmptySubsequences: false)
        let head = parts.first.map(String.init) ?? lowered
        guard byEnvironment[head] != nil else { return nil }
        if parts.count == 2, parts[1] == "v5", byEnvironment[head + "-v5"] != nil { return head + "-v5" }
        return head
    }
}

/// The observation and action widths of the D4RL environments (FACTS.md), to catch a preset
/// used with another environment's data before any training.
public struct D4RLEnvironmentShape: Sendable, Equatable {
    /// Width of an observation.
    public var observationDimension: Int
    /// Width of an action.
    public var actionDimension: Int

    /// The widths by registry name.
    public static let byEnvironment: [String: D4RLEnvironmentShape] = [
        "hopper": D4RLEnvironmentShape(observationDimension: 11, actionDimension: 3),
        "halfcheetah": D4RLEnvironmentShape(observationDimension: 17, actionDimension: 6),
        "walker2d": D4RLEnvironmentShape(observationDimension: 17, actionDimension: 6),
        "ant": D4RLEnvironmentShape(observationDimension: 111, actionDimension: 8),
        "hopper-v5": D4RLEnvironmentShape(observationDimension: 11, actionDimension: 3),
        "halfcheetah-v5": D4RLEnvironmentShape(observationDimension: 17, actionDimension: 6),
        "walker2d-v5": D4RLEnvironmentShape(observationDimension: 17, actionDimension: 6),
        "ant-v5": D4RLEnvironmentShape(observationDimension: 105, actionDimension: 8),
    ]
}

extension D4RLEnvironmentShape {
    /// Why data `observationDimension` and `actionDimension` wide cannot come from
    /// `environment` (a registry name), if it cannot; nil when the widths agree or the
    /// environment's widths are not known.
    public static func mismatch(environment: String, observationDimension: Int, actionDimension: Int) -> String? {
        guard let shape = byEnvironment[environment],
            shape.observationDimension != observationDimension || shape.actionDimension != actionDimension
        else { return nil }
        return
            "\(environment) has observations of \(shape.observationDimension) and actions of \(shape.actionDimension), but the data has \(observationDimension) and \(actionDimension)"
    }
}
