import DecisionFlowSupport
import Foundation
import RLData

/// One environment of an `EnvironmentCatalog`: what it is called, what it takes and gives,
/// how it is scored and evaluated, and how to make one.
public struct EnvironmentEntry: Sendable {
    /// The short name runs and checkpoints record (`hopper`, `hopper-v5`, `pendulum`); for an
    /// environment of your own, its id unless you give another.
    public let name: String
    /// The gymnasium id (`Hopper-v4`), or your own environment's id.
    public let id: String
    /// Other ids that name this environment (gym's `Hopper-v3`).
    public let aliases: [String]
    /// The version in the id (`4` for `Hopper-v4`), or nil for an id without one.
    public let version: Int?
    /// Width of an observation.
    public let observationWidth: Int
    /// Width of an action.
    public let actionWidth: Int
    /// The time limit of an episode.
    public let maxEpisodeSteps: Int
    /// D4RL's reference returns, to report returns as normalized scores; nil for an
    /// environment D4RL does not score.
    public let referenceScores: D4RLReferenceScores?
    /// The target returns the evaluation protocol conditions on (Decision Transformer's: an
    /// expert-level target, then half of it); empty when there are none, and a target of 0
    /// is used.
    public let targets: [Double]
    private let factory: @Sendable () throws -> any Environment

    /// Describes an environment. Nothing is made until `make()`.
    ///
    /// - Parameters:
    ///   - name: what runs and checkpoints record; nil for `id`.
    ///   - id: the environment's id, e.g. `PointMass-v0`.
    ///   - aliases: other ids that name it.
    ///   - version: the version; nil reads it from the id's `-vN` suffix, if it has one.
    ///   - observationWidth: width of an observation.
    ///   - actionWidth: width of an action.
    ///   - maxEpisodeSteps: the time limit.
    ///   - referenceScores: D4RL's pair, if D4RL scores it.
    ///   - targets: the evaluation targets; empty for none.
    ///   - make: makes a new, independent environment each time it is called.
    public init(
        name: String? = nil, id: String, aliases: [String] = [], version: Int? = nil, observationWidth: Int,
        actionWidth: Int, maxEpisodeSteps: Int, referenceScores: D4RLReferenceScores? = nil, targets: [Double] = [],
        make: @escaping @Sendable () throws -> any Environment
    ) {
        self.name = name ?? id
        self.id = id
        self.aliases = aliases
        self.version = version ?? Self.version(in: id)
        self.observationWidth = observationWidth
        self.actionWidth = actionWidth
        self.maxEpisodeSteps = maxEpisodeSteps
        self.referenceScores = referenceScores
        self.targets = targets
        self.factory = make
    }

    /// A new environment.
    ///
    /// - Throws: the environment's own error (a MuJoCo model that fails to load), or
    ///   `EnvironmentError.widthMismatch` when what the factory made disagrees with the entry.
    public func make() throws -> any Environment {
        let environment = try factory()
        if environment.observationSpace.dimension != observationWidth || environment.actionSpace.dimension != actionWidth {
            throw EnvironmentError.widthMismatch(
                environment: label, observationWidth: observationWidth, actionWidth: actionWidth,
                other: "the environment its factory made (\(environment.name))",
                otherObservationWidth: environment.observationSpace.dimension,
                otherActionWidth: environment.actionSpace.dimension)
        }
        return environment
    }

    /// The targets `evaluate` uses when none are given: `targets`, or 0 when there are none.
    public var defaultTargets: [Double] { targets.isEmpty ? [0] : targets }

    /// Checks that data, a checkpoint or a flag (`what`, which the error names) with
    /// observations `observationWidth` wide and actions `actionWidth` wide fits this
    /// environment.
    ///
    /// - Throws: `EnvironmentError.widthMismatch` naming both when a width disagrees.
    public func checkWidths(observationWidth: Int, actionWidth: Int, of what: String) throws {
        guard observationWidth != self.observationWidth || actionWidth != self.actionWidth else { return }
        throw EnvironmentError.widthMismatch(
            environment: label, observationWidth: self.observationWidth, actionWidth: self.actionWidth, other: what,
            otherObservationWidth: observationWidth, otherActionWidth: actionWidth)
    }

    /// `name (id)` (`hopper (Hopper-v4)`), or the id alone when the name is the id in
    /// lower case (`Walker2d-v5`).
    public var label: String { Self.key(name) == Self.key(id) ? id : "\(name) (\(id))" }

    /// Every string that names this entry: its name, its id and its aliases.
    var spellings: [String] { [name, id] + aliases }

    /// How names are compared: without case or underscores (`half_cheetah` is `halfcheetah`).
    static func key(_ name: String) -> String { String(name.lowercased().filter { $0 != "_" }) }

    /// The id without its version: `Walker2d` for `Walker2d-v4` and `Walker2d-v5`, the
    /// versions of one task.
    public var task: String {
        guard version != nil, Self.version(in: id) != nil, let dash = id.lastIndex(of: "-") else { return id }
        return String(id[..<dash])
    }

    /// Whether `other` is a version of the same task (`Walker2d-v4` and `Walker2d-v5`).
    public func isVersion(of other: EnvironmentEntry) -> Bool { task.lowercased() == other.task.lowercased() }

    /// The N of an id ending in `-vN` (`Hopper-v4` → 4), or nil.
    public static func version(in id: String) -> Int? {
        guard let dash = id.lastIndex(of: "-") else { return nil }
        let tail = id[id.index(after: dash)...]
        guard tail.first == "v" || tail.first == "V" else { return nil }
        return Int(tail.dropFirst())
    }
}

/// The environments DecisionFlow knows, by name, gymnasium id or alias: the one place that
/// says which environment an id means, its widths, its time limit, how its returns are
/// scored and which targets it is evaluated at.
///
/// `standard` holds the built-in environments; register your own there, in code, and data,
/// checkpoints, `RolloutEvaluation`, the evaluation protocol and `d4rl-run`'s library calls
/// find them by name like the built-in ones:
///
/// ```swift
/// try EnvironmentCatalog.standard.register(id: "PointMass-v0") { PointMass() }
/// let entry = try EnvironmentCatalog.standard.entry("PointMass-v0")
/// ```
///
/// An id resolves by an exact name, id or alias (ignoring case and underscores), or, for a
/// D4RL dataset id (`hopper-medium-v2`), by its environment part: D4RL's datasets were
/// recorded in gym's v3, the catalog's v4. Safe to use from several threads.
public final class EnvironmentCatalog: @unchecked Sendable {
    private let lock = NSLock()
    private var byName: [String: EnvironmentEntry] = [:]
    private var byKey: [String: String] = [:]

    /// A catalog of `entries`.
    ///
    /// - Throws: `EnvironmentError.alreadyRegistered` when two entries share a spelling, or
    ///   `EnvironmentError.invalidEntry` for an entry with a non-positive width or time limit.
    public init(entries: [EnvironmentEntry] = []) throws {
        for entry in entries { try register(entry) }
    }

    /// The built-in environments, and the ones registered since. What `d4rl-run`, training,
    /// the evaluation protocol and sweeps look names up in.
    public static let standard: EnvironmentCatalog = {
        do {
            return try EnvironmentCatalog(entries: builtIn)
        } catch {
            fatalError("the built-in environment entries disagree: \(error)")
        }
    }()

    /// Adds `entry`.
    ///
    /// - Throws: `EnvironmentError.alreadyRegistered` when its name, id or an alias already
    ///   names an entry (case and underscores aside), or `EnvironmentError.invalidEntry` for
    ///   an empty name, a non-positive width or time limit, or a non-finite target. Nothing
    ///   is added then.
    public func register(_ entry: EnvironmentEntry) throws {
        if let problem = Self.problem(with: entry) { throw EnvironmentError.invalidEntry(name: entry.name, problem: problem) }
        lock.lock()
        defer { lock.unlock() }
        for spelling in entry.spellings {
            if let owner = byKey[EnvironmentEntry.key(spelling)] {
                throw EnvironmentError.alreadyRegistered(name: spelling, entry: byName[owner]?.label ?? owner)
            }
        }
        let keys = Set(entry.spellings.map(EnvironmentEntry.key))
        byName[entry.name] = entry
        for key in keys { byKey[key] = entry.name }
    }

    /// Adds an environment of your own, reading its widths and time limit from one instance
    /// `make` returns.
    ///
    /// - Parameters:
    ///   - id: its id, e.g. `PointMass-v0`; also the name runs record unless `name` is given.
    ///   - name: a shorter name to record, if any.
    ///   - aliases: other ids that name it.
    ///   - referenceScores: the random and expert returns to normalize scores by, if any.
    ///   - targets: the target returns to evaluate at; empty for 0.
    ///   - make: makes a new, independent environment each time it is called.
    /// - Returns: the entry added.
    /// - Throws: what `make` throws, or what `register(_:)` throws.
    @discardableResult
    public func register(
        id: String, name: String? = nil, aliases: [String] = [], referenceScores: D4RLReferenceScores? = nil,
        targets: [Double] = [], make: @escaping @Sendable () throws -> any Environment
    ) throws -> EnvironmentEntry {
        let sample = try make()
        let entry = EnvironmentEntry(
            name: name, id: id, aliases: aliases, observationWidth: sample.observationSpace.dimension,
            actionWidth: sample.actionSpace.dimension, maxEpisodeSteps: sample.maxEpisodeSteps,
            referenceScores: referenceScores, targets: targets, make: make)
        try register(entry)
        return entry
    }

    /// Every entry, by name.
    public var entries: [EnvironmentEntry] {
        lock.lock()
        defer { lock.unlock() }
        return byName.keys.sorted().compactMap { byName[$0] }
    }

    /// The entry `id` names, or nil when none does (no error, no suggestions): for data whose
    /// environment may be one the catalog does not know.
    public func lookUp(_ id: String) -> EnvironmentEntry? {
        lock.lock()
        defer { lock.unlock() }
        let key = EnvironmentEntry.key(id)
        if let name = byKey[key] { return byName[name] }
        // A D4RL dataset id: environment-dataset[-more]-vN, recorded in the v4 environment.
        let parts = key.split(separator: "-", omittingEmptySubsequences: false)
        func isVersion(_ part: Substring) -> Bool { part.first == "v" && Int(part.dropFirst()) != nil }
        guard parts.count >= 3, let last = parts.last, isVersion(last), !parts.dropLast().dropFirst().contains(where: isVersion),
            let name = byKey[String(parts[0])], let entry = byName[name], entry.version == nil || entry.version == 4
        else { return nil }
        return entry
    }

    /// The entry `id` names.
    ///
    /// - Throws: `EnvironmentError.ambiguousEnvironment` when `id` names none exactly but
    ///   begins several (`walker`), or `EnvironmentError.unknownEnvironment` with the close
    ///   matches and every known name.
    public func entry(_ id: String) throws -> EnvironmentEntry {
        if let entry = lookUp(id) { return entry }
        let all = entries
        let key = EnvironmentEntry.key(id)
        let beginning = all.filter { entry in
            !key.isEmpty && entry.spellings.contains { EnvironmentEntry.key($0).hasPrefix(key) }
        }
        if beginning.count > 1 {
            throw EnvironmentError.ambiguousEnvironment(name: id, matches: beginning.map(\.label))
        }
        let labels = Dictionary(all.flatMap { entry in entry.spellings.map { ($0, entry.label) } }, uniquingKeysWith: { a, _ in a })
        var close: [String] = []
        // A third of the name's length in edits, at least one and at most three: `pong` is
        // not close to `ant`, `walkr2d` is to `walker2d`.
        let distance = min(3, max(1, id.count / 3))
        for spelling in Suggestions.close(to: id, among: labels.keys.sorted(), distance: distance) {
            if let label = labels[spelling], !close.contains(label) { close.append(label) }
        }
        throw EnvironmentError.unknownEnvironment(name: id, closeMatches: close, known: all.map(\.label))
    }

    /// The entry `id` names, where `id` may name a task without its version (`walker2d`) and
    /// `recorded` is the environment the data or checkpoint at hand was recorded in: a task
    /// named without a version gets `recorded`'s version of it (`walker2d` with a
    /// `Walker2d-v5` recording is `walker2d-v5`); an id with a version, or another task, is
    /// taken as it is.
    ///
    /// - Throws: what `entry(_:)` throws.
    public func entry(_ id: String, recordedIn recorded: EnvironmentEntry?) throws -> EnvironmentEntry {
        let named = try entry(id)
        guard let recorded, recorded.name != named.name, recorded.isVersion(of: named),
            EnvironmentEntry.version(in: id) == nil
        else { return named }
        return recorded
    }

    /// A new environment of the entry `id` names.
    ///
    /// - Throws: what `entry(_:)` and `EnvironmentEntry.make()` throw.
    public func make(_ id: String) throws -> any Environment { try entry(id).make() }

    private static func problem(with entry: EnvironmentEntry) -> String? {
        if entry.spellings.contains(where: { EnvironmentEntry.key($0).isEmpty }) { return "a name, id or alias is empty" }
        if entry.observationWidth <= 0 || entry.actionWidth <= 0 {
            return "widths must be positive (observations \(entry.observationWidth), actions \(entry.actionWidth))"
        }
        if entry.maxEpisodeSteps <= 0 { return "maxEpisodeSteps must be positive (it is \(entry.maxEpisodeSteps))" }
        if let bad = entry.targets.first(where: { !$0.isFinite }) { return "target \(bad) is not finite" }
        if let scores = entry.referenceScores, !(scores.minimum.isFinite && scores.maximum.isFinite && scores.maximum > scores.minimum) {
            return "reference scores need finite minimum < maximum (they are \(scores.minimum), \(scores.maximum))"
        }
        return nil
    }
}

extension EnvironmentCatalog {
    /// The built-in environments. Widths and time limits are gymnasium 1.2.3's (the tests make
    /// each environment and compare it with its entry; the environments' own constants are
    /// checked against gymnasium's recordings by the replay tests); reference scores are D4RL's for the task, which Minari's v5
    /// datasets keep; targets are the Decision Transformer paper's (none for Ant).
    static var builtIn: [EnvironmentEntry] {
        let published = D4RLReferenceScores.published
        func locomotion(
            _ task: String, _ gymName: String, _ version: LocomotionVersion, observation: Int, action: Int,
            targets: [Double], make: @escaping @Sendable (LocomotionVersion) throws -> any Environment
        ) -> EnvironmentEntry {
            let v4 = version == .v4
            return EnvironmentEntry(
                name: v4 ? task : "\(task)-v5", id: "\(gymName)-\(version.rawValue)", aliases: v4 ? ["\(gymName)-v3"] : [],
                observationWidth: observation, actionWidth: action, maxEpisodeSteps: 1000,
                referenceScores: published[task], targets: targets, make: { try make(version) })
        }
        var entries = [
            EnvironmentEntry(
                name: "pendulum", id: "Pendulum-v1", observationWidth: 3, actionWidth: 1, maxEpisodeSteps: 200,
                make: { Pendulum() }),
            EnvironmentEntry(
                name: "mountaincar", id: "MountainCarContinuous-v0", observationWidth: 2, actionWidth: 1,
                maxEpisodeSteps: 999, make: { MountainCarContinuous() }),
        ]
        for version in LocomotionVersion.allCases {
            entries += [
                locomotion("hopper", "Hopper", version, observation: 11, action: 3, targets: [3600, 1800]) {
                    try Hopper(version: $0)
                },
                locomotion("walker2d", "Walker2d", version, observation: 17, action: 6, targets: [5000, 2500]) {
                    try Walker2d(version: $0)
                },
                locomotion("halfcheetah", "HalfCheetah", version, observation: 17, action: 6, targets: [12000, 6000]) {
                    try HalfCheetah(version: $0)
                },
                locomotion("ant", "Ant", version, observation: version == .v4 ? 111 : 105, action: 8, targets: []) {
                    try Ant(version: $0)
                },
            ]
        }
        return entries
    }
}
