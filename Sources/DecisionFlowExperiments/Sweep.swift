import DecisionFlowSupport
import DecisionFlowTraining
import Foundation

/// A grid of training runs planned into one directory: `sweep.json` lists them, and each has
/// its run directory, `runs/NAME/`, holding its `config.json` from the start, then its log,
/// checkpoint and, once evaluated, `evaluation.json`.
///
/// A specification (`configs/sweeps/*.json`) holds:
/// - `name`: the sweep's name;
/// Relative paths are the specification's own: presets resolve against its folder, and so
/// does a dataset path that names a file or folder there.
///
/// - `configs` (optional): presets, each the base of its own points (the dataset axis of a
///   results table: one preset per dataset);
/// - `base` (optional): fields applied to every point, over the preset;
/// - `grid`: configuration fields (their JSON keys) with the values to try; every combination
///   becomes a run. `datasets` takes lists of files, or single files;
/// - `episodes` (optional, default 10): episodes per target in each run's final evaluation.
///
/// Runs are ordered by preset, then by the grid's keys (`datasets` first, the other fields in
/// alphabetical order, `seed` last), the last varying fastest; that order is each run's index
/// (`sweep run --index`).
public struct Sweep: Sendable {
    /// One planned run.
    public struct Run: Codable, Sendable, Equatable {
        /// A name made of what varies (`hopper-medium_attention-flow_seed-1`), unique in the sweep.
        public var name: String
        /// The run directory, relative to the sweep's directory.
        public var directory: String
    }

    /// What `sweep.json` holds.
    struct Plan: Codable {
        var name: String
        var episodes: Int
        var runs: [Run]
    }

    /// Where a run stands.
    public enum State: Equatable, Sendable {
        /// Trained and evaluated: its `evaluation.json` holds for its checkpoint
        /// (`EvaluationRecord`).
        case done
        /// A process holds the run directory's lock now.
        case running(step: Int)
        /// Stopped at `step` (a checkpoint exists) and not evaluated yet.
        case stopped(step: Int)
        /// Not started.
        case pending
        /// Its `evaluation.json` does not hold, for `reason`; it is evaluated (after training
        /// to its last step, if needed) again. `step` is its checkpoint's, 0 without one.
        case evaluationRejected(step: Int, reason: String)
    }

    /// The file in a sweep directory that lists its runs.
    public static let planFile = "sweep.json"

    /// The sweep's directory.
    public let directory: String
    /// The sweep's name.
    public let name: String
    /// Episodes per target in each run's final evaluation.
    public let episodes: Int
    /// The runs, in index order.
    public let runs: [Run]

    /// A run's directory (absolute, or relative to the working directory).
    public func directory(of run: Run) -> RunDirectory {
        RunDirectory(URL(fileURLWithPath: directory).appendingPathComponent(run.directory).path)
    }

    /// A run's configuration, as planned.
    public func configuration(of run: Run) throws -> TrainingConfiguration {
        try TrainingConfiguration.read(directory(of: run).configurationPath)
    }

    /// Where `run` stands now.
    public func state(of run: Run) -> State {
        let runDirectory = directory(of: run)
        if runDirectory.isLocked {
            // Training now: the log is ahead of the checkpoint, and says how far it got.
            return .running(step: TrainingRun.readLog(runDirectory.logPath).last?.step ?? 0)
        }
        let verdict = EvaluationRecord.check(runDirectory)
        if case .valid = verdict { return .done }  // the check read the checkpoint already
        // Where a stopped run resumes: its checkpoint's step (its log may hold later lines).
        let step = runDirectory.holdsCheckpoint ? (try? TrainingRun.savedCheckpoint(in: runDirectory.path))?.state.step : nil
        switch verdict {
        case .valid: return .done
        case .rejected(let reason): return .evaluationRejected(step: step ?? 0, reason: reason)
        case .missing: return runDirectory.holdsCheckpoint ? .stopped(step: step ?? 0) : .pending
        }
    }

    // MARK: - Opening

    /// Opens a planned sweep.
    ///
    /// - Throws: `TrainingError.runDirectory` when `directory` holds no readable `sweep.json`.
    public static func open(_ directory: String) throws -> Sweep {
        let planPath = URL(fileURLWithPath: directory).appendingPathComponent(planFile).path
        guard let data = FileManager.default.contents(atPath: planPath) else {
            throw TrainingError.runDirectory(
                path: directory,
                problem: "is not a sweep (it has no \(planFile)); create one with `d4rl-run sweep plan SPEC.json -o \(directory)`")
        }
        let plan: Plan
        do {
            plan = try JSONDecoder().decode(Plan.self, from: data)
        } catch {
            throw TrainingError.runDirectory(
                path: planPath, problem: "cannot be read as a sweep plan (\(error)); plan the sweep again")
        }
        guard (1...10_000).contains(plan.episodes) else {
            throw TrainingError.runDirectory(
                path: planPath, problem: "says \(plan.episodes) evaluation episodes per target; it must be 1 to 10000 (plan the sweep again, or correct it)")
        }
        for run in plan.runs where run.directory.hasPrefix("/") || run.directory.split(separator: "/").contains("..") {
            throw TrainingError.runDirectory(
                path: planPath, problem: "names a run directory outside the sweep ('\(run.directory)'); plan the sweep again")
        }
        return Sweep(directory: directory, name: plan.name, episodes: plan.episodes, runs: plan.runs)
    }

    // MARK: - Planning

    /// Expands the specification at `specificationPath` into run directories under `directory`.
    ///
    /// Every point is validated as a whole configuration before anything is written.
    ///
    /// - Throws: `TrainingError.badConfiguration` naming the specification and the field: an
    ///   unknown field (with a "did you mean"), an empty grid, a value of the wrong type, a
    ///   point that is not a valid configuration; `TrainingError.runDirectory` when `directory`
    ///   already holds a sweep.
    public static func plan(specification specificationPath: String, into directory: String) throws -> Sweep {
        let source = specificationPath
        guard let data = FileManager.default.contents(atPath: source) else {
            throw TrainingError.badConfiguration(file: source, problem: "cannot be read; check the path")
        }
        guard let specification = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TrainingError.badConfiguration(file: source, problem: "is not a JSON object")
        }
        let allowed = ["name", "configs", "base", "grid", "episodes"]
        if let unknown = specification.keys.sorted().first(where: { !allowed.contains($0) }) {
            let hint = Suggestions.nearest(to: unknown, among: allowed).map { " (did you mean '\($0)'?)" } ?? ""
            throw TrainingError.badConfiguration(
                file: source, problem: "has an unknown key '\(unknown)'\(hint); a sweep has \(allowed.joined(separator: ", "))")
        }
        if let given = specification["name"] {
            guard let text = given as? String, !text.isEmpty, !text.contains("/") else {
                throw TrainingError.badConfiguration(
                    file: source, problem: "name must be a non-empty string without '/' (it is \(given))")
            }
        }
        let name = specification["name"] as? String ?? URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        let episodes = specification["episodes"].flatMap { isBoolean($0) ? nil : $0 as? Int } ?? 10
        if let given = specification["episodes"] {
            guard !isBoolean(given), given as? Int != nil, (1...10_000).contains(episodes) else {
                throw TrainingError.badConfiguration(
                    file: source, problem: "episodes must be a whole number from 1 to 10000 (it is \(given))")
            }
        }
        // Relative paths in a specification are its own: presets resolve against its folder,
        // and so does a dataset path that names a file or folder there (anything else, such as
        // a Minari id, is kept as written). Runs record them absolute.
        let folder = URL(fileURLWithPath: source).deletingLastPathComponent()
        func beside(_ path: String) -> String {
            path.hasPrefix("/") ? path : folder.appendingPathComponent(path).standardizedFileURL.path
        }
        func dataPath(_ path: String) -> String {
            FileManager.default.fileExists(atPath: beside(path)) ? beside(path) : path
        }
        func dataPaths(_ value: Any) -> Any {
            if let path = value as? String { return dataPath(path) }
            if let paths = value as? [String] { return paths.map(dataPath) }
            return value
        }
        let presets = (specification["configs"] as? [String] ?? []).map(beside)
        if specification["configs"] != nil, presets.isEmpty {
            throw TrainingError.badConfiguration(file: source, problem: "configs must be a non-empty list of preset files")
        }
        var base = specification["base"] as? [String: Any] ?? [:]
        if let datasets = base["datasets"] { base["datasets"] = dataPaths(datasets) }
        if specification["base"] != nil, specification["base"] as? [String: Any] == nil {
            throw TrainingError.badConfiguration(file: source, problem: "base must be an object of configuration fields")
        }
        guard let grid = (specification["grid"] ?? [String: Any]()) as? [String: Any] else {
            throw TrainingError.badConfiguration(file: source, problem: "grid must be an object of field: [values]")
        }
        if specification["grid"] != nil, grid.isEmpty {
            throw TrainingError.badConfiguration(
                file: source, problem: "the grid is empty; give it fields with the values to try, or leave it out")
        }
        let known = TrainingConfiguration.fields.map(\.name)
        for key in (Array(base.keys) + Array(grid.keys)).sorted() where !known.contains(key) {
            let hint = Suggestions.nearest(to: key, among: known).map { " (did you mean '\($0)'?)" } ?? ""
            throw TrainingError.badConfiguration(
                file: source, problem: "names an unknown configuration field '\(key)'\(hint); configs/README.md lists them")
        }
        var axes: [(key: String, values: [Any])] = []
        // Datasets first, seeds last (varying fastest), the other fields alphabetically between.
        func rank(_ key: String) -> Int { key == "datasets" ? 0 : key == "seed" ? 2 : 1 }
        for key in grid.keys.sorted(by: { (rank($0), $0) < (rank($1), $1) }) {
            guard let values = grid[key] as? [Any], !values.isEmpty else {
                throw TrainingError.badConfiguration(
                    file: source, problem: "the grid's '\(key)' has no values; give it a non-empty list")
            }
            axes.append((key, values.map { key == "datasets" ? dataPaths($0 is String ? [$0] : $0) : $0 }))
        }
        guard !presets.isEmpty || !axes.isEmpty else {
            throw TrainingError.badConfiguration(
                file: source, problem: "the grid is empty: give configs, grid values or both, so there is a run to plan")
        }
        // Counted before anything is expanded, with overflow checks: a grid of a million points
        // is refused at once, not after minutes of planning.
        let pointCount = CheckedSize.product(of: [max(presets.count, 1)] + axes.map { $0.values.count })
        guard let pointCount, pointCount <= maximumRuns else {
            throw TrainingError.badConfiguration(
                file: source,
                problem:
                    "plans \(pointCount.map(String.init) ?? "more than \(Int.max)") runs (\(([max(presets.count, 1)] + axes.map { $0.values.count }).map(String.init).joined(separator: " × "))), more than a sweep holds (\(maximumRuns)); split it into several sweeps")
        }

        // Every point as a whole configuration, checked before anything is written.
        var points: [(name: String, configuration: TrainingConfiguration)] = []
        for preset in presets.isEmpty ? [nil] : presets.map(Optional.some) {
            var fields: [String: Any] = [:]
            if let preset {
                let configuration = try TrainingConfiguration.read(preset)
                fields = try jsonObject(of: configuration)
            }
            for (key, value) in base { fields[key] = value }
            var combinations: [[(String, Any)]] = [[]]
            for axis in axes {
                combinations = combinations.flatMap { prefix in axis.values.map { prefix + [(axis.key, $0)] } }
            }
            for combination in combinations {
                var point = fields
                for (key, value) in combination { point[key] = value }
                var nameParts: [String] = []
                if let preset { nameParts.append(URL(fileURLWithPath: preset).deletingPathExtension().lastPathComponent) }
                for (key, value) in combination where axes.first(where: { $0.key == key })!.values.count > 1 {
                    nameParts.append("\(key)-\(label(of: value, key: key))")
                }
                let label = nameParts.isEmpty ? "run" : nameParts.joined(separator: "_")
                let pointSource = "\(source) (point \(label))"
                let configuration = try TrainingConfiguration.decode(
                    try JSONSerialization.data(withJSONObject: point), source: pointSource
                ).validated(source: pointSource)
                points.append((label, configuration))
            }
        }
        // Two points with the same configuration are one run planned twice (a repeated value,
        // or one written two ways, 1e-4 and 0.0001): a table would count it as two seeds.
        // Data files count by what they are, not how they are named (a link, `a/../a`).
        var firstPoint: [String: String] = [:]
        for point in points {
            var identity = point.configuration
            identity.data.datasets = identity.data.datasets.map { path in
                var status = stat()
                guard stat(path, &status) == 0 else { return path }
                return "file \(status.st_dev):\(status.st_ino)"  // the same file however named (a hard link too)
            }
            let fingerprint = identity.fingerprint
            if let earlier = firstPoint[fingerprint] {
                throw TrainingError.badConfiguration(
                    file: source,
                    problem:
                        "points \(earlier) and \(point.name) are the same configuration; list each value of the grid once")
            }
            firstPoint[fingerprint] = point.name
        }
        var runs: [Run] = []
        var used: Set<String> = []
        for (index, point) in points.enumerated() {
            var runName = sanitized(point.name)
            if used.contains(runName) { runName += "_\(index)" }
            used.insert(runName)
            runs.append(Run(name: runName, directory: "runs/\(runName)"))
        }

        let root = URL(fileURLWithPath: directory)
        if FileManager.default.fileExists(atPath: root.appendingPathComponent(planFile).path) {
            throw TrainingError.runDirectory(
                path: directory, problem: "already holds a sweep; run it with `d4rl-run sweep run \(directory)`, or plan into another directory")
        }
        // Nor inside one (through links too): its runs/ would hold a second plan's files among
        // its own runs. Nor into a run's directory.
        // A run's directory: its configuration, with its checkpoint or log.
        func isRun(_ path: String) -> Bool {
            let run = RunDirectory(path)
            return FileManager.default.fileExists(atPath: run.configurationPath)
                && (run.holdsCheckpoint || FileManager.default.fileExists(atPath: run.logPath))
        }
        if isRun(directory) {
            throw TrainingError.runDirectory(
                path: directory, problem: "is a run's directory (it holds its checkpoint or log); plan into a directory of its own")
        }
        var above = root.standardizedFileURL.resolvingSymlinksInPath()
        while above.path != "/" {
            above = above.deletingLastPathComponent().resolvingSymlinksInPath()
            if FileManager.default.fileExists(atPath: above.appendingPathComponent(planFile).path) || isRun(above.path) {
                throw TrainingError.runDirectory(
                    path: directory, problem: "lies inside the sweep or run \(above.path); plan into a directory outside it")
            }
        }
        // Runs left by another plan (its sweep.json removed) are never adopted: their old
        // config.json would be replaced under their checkpoints and evaluations.
        for run in runs {
            let path = root.appendingPathComponent(run.directory).path
            if let contents = try? FileManager.default.contentsOfDirectory(atPath: path), !contents.isEmpty {
                throw TrainingError.runDirectory(
                    path: path,
                    problem: "already holds files of another run (\(contents.sorted().joined(separator: ", "))); plan into an empty directory")
            }
        }
        for (run, point) in zip(runs, points) {
            let runDirectory = RunDirectory(root.appendingPathComponent(run.directory).path)
            do {
                try FileManager.default.createDirectory(at: runDirectory.url, withIntermediateDirectories: true)
            } catch {
                throw FileWriteError(file: runDirectory.path, problem: FileProblem.describe(error, writing: runDirectory.path))
            }
            try AtomicFile.write(try JSONEncoder.prettySorted.encode(point.configuration), to: runDirectory.configurationPath)
        }
        // The plan last: a directory with sweep.json is a complete sweep.
        try AtomicFile.write(
            try JSONEncoder.prettySorted.encode(Plan(name: name, episodes: episodes, runs: runs)),
            to: root.appendingPathComponent(planFile).path)
        return Sweep(directory: directory, name: name, episodes: episodes, runs: runs)
    }

    /// The most runs one sweep plans.
    public static let maximumRuns = 10_000

    /// Whether a JSON value is `true` or `false` (which Foundation would also read as 1 or 0).
    static func isBoolean(_ value: Any) -> Bool {
        (value as? NSNumber).map { String(cString: $0.objCType) == "c" } ?? false
    }

    /// A configuration as a JSON object of its fields.
    static func jsonObject(of configuration: TrainingConfiguration) throws -> [String: Any] {
        let data = try JSONEncoder.sorted.encode(configuration)
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// A grid value in a run's name: a dataset list as its files' base names.
    static func label(of value: Any, key: String) -> String {
        if key == "datasets", let files = value as? [String] {
            return files.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }.joined(separator: "+")
        }
        if let number = value as? NSNumber { return number.stringValue }
        return "\(value)"
    }

    /// Keeps letters, digits, `.`, `-`, `_` and `+`; replaces anything else with `-`.
    static func sanitized(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || "._-+".contains($0) ? $0 : "-" })
    }
}
