import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation
import RLData

/// The results table of evaluated runs, in the shape of the Flowformer paper's: a row per
/// dataset, a column per model, and in each cell the D4RL normalized score's mean ± std over
/// the seeds, per evaluation target.
///
/// Runs are grouped by their whole configuration except the seed and the fields that do not
/// change what is learned (`ignoredFields`): only runs that differ in nothing else are
/// averaged. Within a dataset, what tells the groups apart (for example `attention`) makes the
/// columns; with `columns` given, any other difference is an error that names the fields.
public struct ResultsTable: Sendable {
    /// One evaluated run.
    public struct Entry: Sendable {
        /// The run directory.
        public var directory: String
        /// Its configuration.
        public var configuration: TrainingConfiguration
        /// Its final evaluation.
        public var evaluation: RunEvaluation
    }

    /// One cell: a dataset, a column and a target.
    public struct Cell: Codable, Sendable, Equatable {
        /// The row's dataset label.
        public var dataset: String
        /// The column's label.
        public var column: String
        /// 0 for the first (expert-level) target, 1 for the second.
        public var targetIndex: Int
        /// The target return (of the first run; every run of a cell has the same).
        public var target: Double
        /// Mean over seeds of each run's mean normalized score.
        public var mean: Double
        /// Population standard deviation over seeds.
        public var std: Double
        /// The seeds averaged.
        public var seeds: [UInt64]
        /// Training steps of the runs.
        public var steps: Int
    }

    /// Fields that do not change what a run learns, never a reason to keep runs apart.
    public static let ignoredFields: Set<String> = [
        "seed", "threads", "logEvery", "checkpointEvery", "evaluateEvery", "evaluationEpisodes", "evaluationTarget",
    ]

    /// The rows' dataset labels, in order of first appearance.
    public let datasets: [String]
    /// The columns' labels, in order of first appearance.
    public let columns: [String]
    /// The fields whose values make the columns.
    public let columnFields: [String]
    /// Every cell with at least one run.
    public let cells: [Cell]
    /// Runs found but not evaluated yet (no `evaluation.json`).
    public let unevaluated: [String]
    /// Runs whose evaluation was not believed, with the reason (`EvaluationRecord`), and runs
    /// reached twice under another path or copied (counted once).
    public let notCounted: [(directory: String, reason: String)]

    /// Collects the evaluated runs under `paths`: sweep directories (their runs) or run
    /// directories holding `evaluation.json`.
    ///
    /// - Parameters:
    ///   - paths: sweep directories or run directories.
    ///   - requested: the fields that make the columns; nil chooses every field that differs
    ///     between the runs of a dataset.
    /// - Throws: `TrainingError` naming the path when it is neither, when runs of a dataset
    ///   differ beyond `columns` (naming the fields), or when nothing is evaluated.
    public static func collect(_ paths: [String], columns requested: [String]? = nil) throws -> ResultsTable {
        var entries: [Entry] = []
        var unevaluated: [String] = []
        var notCounted: [(directory: String, reason: String)] = []
        // A run is counted once however it is reached: by its real path (a sweep and one of its
        // runs, a sweep given twice, a plan that lists a run twice), then by its checkpoint (a
        // copy of a run directory is the same evidence).
        var seenPaths: [String: String] = [:]
        var seenCheckpoints: [String: String] = [:]
        for path in paths {
            let url = URL(fileURLWithPath: path)
            var runDirectories: [RunDirectory] = []
            if FileManager.default.fileExists(atPath: url.appendingPathComponent(Sweep.planFile).path) {
                let sweep = try Sweep.open(path)
                runDirectories = sweep.runs.map { sweep.directory(of: $0) }
            } else if FileManager.default.fileExists(atPath: RunDirectory(path).configurationPath) {
                runDirectories = [RunDirectory(path)]
            } else {
                throw TrainingError.runDirectory(
                    path: path, problem: "is neither a sweep (sweep.json) nor a run directory (config.json); pass sweep or run directories")
            }
            for directory in runDirectories {
                let identity = directory.url.standardizedFileURL.resolvingSymlinksInPath().path
                if let first = seenPaths[identity] {
                    if first != directory.path {
                        notCounted.append((directory.path, "is \(first) again (counted once)"))
                    }
                    continue
                }
                seenPaths[identity] = directory.path
                switch EvaluationRecord.check(directory) {
                case .missing:
                    unevaluated.append(directory.path)
                case .rejected(let reason):
                    notCounted.append((directory.path, reason))
                case .valid(let evaluation, let saved):
                    let checksum = evaluation.evaluated?.checkpoint ?? ""
                    if let first = seenCheckpoints[checksum] {
                        notCounted.append((directory.path, "holds the same checkpoint as \(first), a copy of that run (counted once)"))
                        continue
                    }
                    seenCheckpoints[checksum] = directory.path
                    // The checkpoint's configuration is the run's record (config.json a copy).
                    entries.append(Entry(directory: directory.path, configuration: saved.configuration, evaluation: evaluation))
                }
            }
        }
        guard !entries.isEmpty else {
            let reasons = notCounted.map { "\($0.directory): \($0.reason)" }
            throw TrainingError.runDirectory(
                path: paths.joined(separator: ", "),
                problem: "holds no run with an evaluation that holds (no evaluation.json, or none checks out against its checkpoint); finish the runs with `d4rl-run sweep run`"
                    + (reasons.isEmpty ? "" : ". Not counted: " + reasons.joined(separator: "; ")))
        }
        return try ResultsTable(entries: entries, columns: requested, unevaluated: unevaluated, notCounted: notCounted)
    }

    /// Builds the table from entries (see `collect`); `requested` and `unevaluated` as there.
    public init(
        entries: [Entry], columns requested: [String]? = nil, unevaluated: [String] = [],
        notCounted: [(directory: String, reason: String)] = []
    ) throws {
        let known = Set(TrainingConfiguration.fields.map(\.name))
        if let requested, let unknown = requested.first(where: { !known.contains($0) }) {
            throw TrainingError.badConfiguration(
                file: "--columns", problem: "names an unknown field '\(unknown)'; configs/README.md lists them")
        }
        func fields(_ entry: Entry) throws -> [String: String] {
            let object = try Sweep.jsonObject(of: entry.configuration)
            var result: [String: String] = [:]
            for (key, value) in object where !Self.ignoredFields.contains(key) {
                let data = (try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys])) ?? Data()
                result[key] = String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
            }
            return result
        }
        let described = try entries.map { ($0, try fields($0)) }
        // A row per dataset list, labelled by its files' names; two lists whose names agree
        // (Minari ids that end alike, files of one name in two folders) keep their full paths.
        func shortLabel(_ datasets: [String]) -> String {
            datasets.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }.joined(separator: "+")
        }
        var listsByLabel: [String: Set<[String]>] = [:]
        for entry in entries { listsByLabel[shortLabel(entry.configuration.datasets), default: []].insert(entry.configuration.datasets) }
        func datasetLabel(_ entry: Entry) -> String {
            let short = shortLabel(entry.configuration.datasets)
            return (listsByLabel[short]?.count ?? 0) > 1 ? entry.configuration.datasets.joined(separator: "+") : short
        }
        // What differs between runs of the same dataset.
        var differing: Set<String> = []
        var byDataset: [String: [[String: String]]] = [:]
        for (entry, values) in described { byDataset[datasetLabel(entry), default: []].append(values) }
        for (_, group) in byDataset {
            for key in Set(group.flatMap(\.keys)) where Set(group.map { $0[key] ?? "" }).count > 1 {
                differing.insert(key)
            }
        }
        differing.remove("datasets")
        differing.remove("environment")
        let columnFields = requested ?? differing.sorted()
        let beyond = differing.subtracting(columnFields).sorted()
        if !beyond.isEmpty {
            throw TrainingError.badConfiguration(
                file: "--columns",
                problem:
                    "runs of one dataset differ in \(beyond.joined(separator: ", ")) besides the columns (\(columnFields.joined(separator: ", "))); they are never averaged together: add those fields to --columns, or report the runs separately")
        }
        func columnLabel(_ values: [String: String]) -> String {
            columnFields.isEmpty
                ? "score"
                : columnFields.map { "\($0)=\((values[$0] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\"")))" }
                    .joined(separator: ", ")
        }
        var datasets: [String] = []
        var columns: [String] = []
        var groups: [String: [(Entry, [String: String])]] = [:]
        var order: [String] = []
        for (entry, values) in described {
            let dataset = datasetLabel(entry)
            let column = columnLabel(values)
            if !datasets.contains(dataset) { datasets.append(dataset) }
            if !columns.contains(column) { columns.append(column) }
            let key = "\(dataset)\u{0}\(column)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append((entry, values))
        }
        var cells: [Cell] = []
        for key in order {
            let members = groups[key]!
            // Only runs equal in everything but the ignored fields are averaged.
            let reference = members[0].1
            for (entry, values) in members.dropFirst() where values != reference {
                let fields = Set(values.keys).union(reference.keys).filter { values[$0] != reference[$0] }.sorted()
                throw TrainingError.badConfiguration(
                    file: entry.directory,
                    problem:
                        "differs from \(members[0].0.directory) in \(fields.joined(separator: ", ")) but would share its cell; they are never averaged together: add those fields to --columns")
            }
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            let targetCount = members.map(\.0.evaluation.targets.count).max() ?? 0
            for index in 0..<targetCount {
                // Only runs with a normalized score at this target count, and only their seeds.
                let scored = members.compactMap { member -> (seed: UInt64, target: Double, score: Double)? in
                    let targets = member.0.evaluation.targets
                    guard index < targets.count, let score = targets[index].normalizedMean else { return nil }
                    return (member.0.configuration.seed, targets[index].target, score)
                }
                guard let first = scored.first else { continue }
                let summary = SummaryStatistics(scored.map(\.score))
                guard summary.mean.isFinite, summary.std.isFinite else {
                    throw TrainingError.mismatch(
                        "the scores of \(parts[0]) · \(parts[1]) · target \(index + 1) (\(scored.map { String($0.score) }.joined(separator: ", "))) overflow when averaged; the evaluations of \(members.map(\.0.directory).joined(separator: ", ")) hold absurd values")
                }
                cells.append(
                    Cell(
                        dataset: parts[0], column: parts[1], targetIndex: index, target: first.target, mean: summary.mean,
                        std: summary.std, seeds: scored.map(\.seed).sorted(), steps: members[0].0.configuration.steps))
            }
        }
        // Evaluations that hold but carry no normalized score (an environment without
        // reference scores) make no cell: an empty table would pass for a result.
        guard !cells.isEmpty else {
            let named = entries.prefix(3).map(\.directory).joined(separator: ", ")
            throw TrainingError.runDirectory(
                path: entries.count > 3 ? "\(named) and \(entries.count - 3) more" : named,
                problem:
                    "has evaluations but no D4RL normalized score in any of them (the environment has no reference scores); `d4rl-run evaluate` prints their returns")
        }
        self.datasets = datasets
        self.columns = columns
        self.columnFields = columnFields
        self.cells = cells
        self.unevaluated = unevaluated
        self.notCounted = notCounted
    }

    /// The cell of a dataset, column and target, if any run filled it.
    public func cell(_ dataset: String, _ column: String, target: Int) -> Cell? {
        cells.first { $0.dataset == dataset && $0.column == column && $0.targetIndex == target }
    }

    /// The targets present, 0-based (the expert-level target, then half of it).
    var targetIndices: [Int] { Array(Set(cells.map(\.targetIndex))).sorted() }

    /// The mean over datasets of a column's cell means for a target (nil when a dataset lacks it).
    public func average(_ column: String, target: Int) -> Double? {
        let values = datasets.map { cell($0, column, target: target)?.mean }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { return nil }
        return values.compactMap { $0 }.reduce(0, +) / Double(values.count)
    }

    // MARK: - Output

    /// The table as Markdown: a row per dataset, a column per model and target, an average
    /// row, and the seeds and steps under it.
    public var markdown: String {
        let headers = columns.flatMap { column in targetIndices.map { "\(column) · target \($0 + 1)" } }
        var lines = ["| dataset | " + headers.joined(separator: " | ") + " |"]
        lines.append("|---|" + String(repeating: "---|", count: headers.count))
        for dataset in datasets {
            let values = columns.flatMap { column in
                targetIndices.map { index in
                    cell(dataset, column, target: index).map { String(format: "%.1f ± %.1f", $0.mean, $0.std) } ?? "–"
                }
            }
            lines.append("| \(dataset) | " + values.joined(separator: " | ") + " |")
        }
        let averages = columns.flatMap { column in
            targetIndices.map { index in average(column, target: index).map { String(format: "**%.1f**", $0) } ?? "–" }
        }
        lines.append("| average | " + averages.joined(separator: " | ") + " |")
        lines.append("")
        let seeds = columns.compactMap { column -> String? in
            let columnCells = cells.filter { $0.column == column }
            guard !columnCells.isEmpty else { return nil }
            let seedLists = Set(columnCells.map { $0.seeds.map(String.init).joined(separator: ", ") }).sorted()
            let steps = Set(columnCells.map(\.steps)).sorted().map(String.init)
            return "\(column): seeds \(seedLists.joined(separator: " or ")), \(steps.joined(separator: "/")) steps"
        }
        lines.append(
            "D4RL normalized score ×100, mean ± std (population) over seeds; target 1 is the expert-level target (hopper 3600, halfcheetah 12000, walker2d 5000), target 2 half of it. "
                + seeds.joined(separator: "; ") + ".")
        if !unevaluated.isEmpty { lines.append("\(unevaluated.count) run(s) not evaluated yet are left out.") }
        if !notCounted.isEmpty {
            lines.append("\(notCounted.count) run(s) not counted:")
            for (directory, reason) in notCounted { lines.append("- \(directory): \(reason)") }
        }
        return lines.joined(separator: "\n")
    }

    /// One line per cell: dataset, column, target index and value, mean, std, seeds, steps.
    public var csv: String {
        var lines = ["dataset,column,target_index,target,mean,std,seeds,steps"]
        for cell in cells {
            let column = cell.column.contains(",") ? "\"\(cell.column)\"" : cell.column
            lines.append(
                "\(cell.dataset),\(column),\(cell.targetIndex + 1),\(cell.target),\(cell.mean),\(cell.std),\(cell.seeds.count),\(cell.steps)")
        }
        return lines.joined(separator: "\n")
    }

    /// The cells as JSON.
    public func json() throws -> String {
        String(decoding: try JSONEncoder.prettySorted.encode(cells), as: UTF8.self)
    }

    /// Bars with error bars (± std): a group per dataset, a bar per column and target.
    public var svg: String {
        let series = columns.flatMap { column in targetIndices.map { (column, $0) } }
        let barWidth = 18.0
        // Wide enough for the bars and for the dataset's name under them (about 6.5 px a letter).
        let longest = Double(datasets.map(\.count).max() ?? 0)
        let groupWidth = max(Double(series.count) * barWidth + 24, longest * 6.5 + 16)
        let width = max(480, 70 + Double(datasets.count) * groupWidth + 20)
        let height = 300.0
        // Finite whatever the scores (a mean and a spread near the largest Double add to infinity).
        let top = min(max(100, (cells.map { $0.mean + $0.std }.max() ?? 100) * 1.1), .greatestFiniteMagnitude / 2)
        let plotHeight = 200.0
        let baseline = 40 + plotHeight
        func y(_ value: Double) -> Double { baseline - max(0, value) / top * plotHeight }
        let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
        var parts = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height + 20 * Double(series.count)))\" font-family=\"sans-serif\" font-size=\"11\">",
            "<text x=\"10\" y=\"20\" font-size=\"13\">D4RL normalized score (mean ± std over seeds)</text>",
            "<line x1=\"60\" y1=\"\(baseline)\" x2=\"\(width - 10)\" y2=\"\(baseline)\" stroke=\"black\"/>",
        ]
        for tick in stride(from: 0.0, through: top, by: Self.tickStep(top: top)) {
            let label = tick < 1e15 ? "\(Int(tick))" : String(format: "%.3g", tick)
            parts.append(
                "<text x=\"55\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(label)</text><line x1=\"58\" y1=\"\(y(tick))\" x2=\"\(width - 10)\" y2=\"\(y(tick))\" stroke=\"#ddd\"/>")
        }
        for (group, dataset) in datasets.enumerated() {
            let left = 70 + Double(group) * groupWidth
            let barsLeft = left + (groupWidth - 16 - Double(series.count) * barWidth) / 2
            parts.append(
                "<text x=\"\(left + (groupWidth - 16) / 2)\" y=\"\(baseline + 16)\" text-anchor=\"middle\">\(escape(dataset))</text>")
            for (index, (column, target)) in series.enumerated() {
                guard let cell = cell(dataset, column, target: target) else { continue }
                let x = barsLeft + Double(index) * barWidth
                let color = palette[index % palette.count]
                parts.append(
                    "<rect x=\"\(x)\" y=\"\(y(cell.mean))\" width=\"\(barWidth - 3)\" height=\"\(baseline - y(cell.mean))\" fill=\"\(color)\"/>")
                let center = x + (barWidth - 3) / 2
                parts.append(
                    "<line x1=\"\(center)\" y1=\"\(y(cell.mean + cell.std))\" x2=\"\(center)\" y2=\"\(y(cell.mean - cell.std))\" stroke=\"black\"/>")
            }
        }
        for (index, (column, target)) in series.enumerated() {
            let legendY = height + Double(index) * 20
            parts.append(
                "<rect x=\"70\" y=\"\(legendY - 10)\" width=\"12\" height=\"12\" fill=\"\(palette[index % palette.count])\"/><text x=\"88\" y=\"\(legendY)\">\(escape(column)) · target \(target + 1)</text>")
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    /// The distance between the value axis's ticks: 20 or 50 for normalized scores (up to
    /// 1000), else a round number that gives at most ten ticks, however large the scores.
    static func tickStep(top: Double) -> Double {
        if top <= 150 { return 20 }
        if top <= 1000 { return 50 }
        let raw = top / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].first { raw <= $0 * magnitude } ?? 10
        return step * magnitude
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
