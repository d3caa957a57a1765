/// D4RL's reference returns, used to report a return as a normalized score.
///
/// `normalized = 100 · (return − minimum) / (maximum − minimum)`: 0 is a random policy, 100
/// an expert. Every gym-MuJoCo dataset of an environment (random, medium, medium-replay,
/// medium-expert, expert; v0, v1 and v2) uses the same pair. Source: D4RL `d4rl/infos.py`.
///
/// Which environment an id names, and the pair it is scored with, is the environment
/// catalog's business (`EnvironmentCatalog` in RLEnvironments); this type is the pair and
/// D4RL's published table.
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

    /// D4RL's table (`d4rl/infos.py`), by task: the part of a D4RL dataset id before the
    /// dataset's name (`hopper` in `hopper-medium-v2`, `maze2d-umaze` in `maze2d-umaze-v1`).
    public static let published: [String: D4RLReferenceScores] = [
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

    /// The task of `published` that a D4RL dataset id or a gym id names (`hopper-medium-v2`,
    /// `Hopper-v3` and `Hopper-v5` → `hopper`; `half_cheetah` → `halfcheetah`;
    /// `maze2d-umaze-v1` → `maze2d-umaze`), or nil for one D4RL does not score.
    public static func task(ofID id: String) -> String? {
        let lowered = String(id.lowercased().filter { $0 != "_" })
        if lowered.hasPrefix("maze2d") {
            return ["umaze", "medium", "large", "open"].first { lowered.contains($0) }.map { "maze2d-\($0)" }
        }
        if lowered.hasPrefix("antmaze") { return "antmaze" }
        let head = lowered.split(separator: "-", omittingEmptySubsequences: false).first.map(String.init) ?? lowered
        return published[head] != nil ? head : nil
    }

    /// D4RL's pair for the task `id` names (`task(ofID:)`), or nil.
    public static func forID(_ id: String) -> D4RLReferenceScores? {
        task(ofID: id).flatMap { published[$0] }
    }
}
