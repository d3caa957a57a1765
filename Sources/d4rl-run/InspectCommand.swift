import ArgumentParser
import DecisionFlow
import DecisionFlowSupport
import Foundation
import RLData
import RLEnvironments

/// `d4rl-run inspect FILE…`: what is in a D4RL file or Minari dataset, and whether it loads.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print the keys, episodes, returns and normalized score of D4RL files and Minari datasets.",
        discussion: """
            Each file is loaded with the same checks training uses. A file that fails them is \
            still listed (its keys, when it is HDF5) together with the reason, and the command \
            exits with status 65 after reporting every file. A Minari dataset is named by its \
            folder or by its id under $MINARI_DATASETS_PATH (default ~/.minari/datasets); its \
            keys are listed for the first episode, and its description says how a Dict \
            observation space was flattened (observation_layout).
            """
    )

    @Argument(help: "D4RL-schema HDF5 files, Minari dataset folders or Minari dataset ids.", completion: .file())
    var files: [String]

    @Option(
        help:
            "Environment to score against: a name or gymnasium id (hopper, Walker2d-v5, ant, ...; `d4rl-run environments` lists them). Default: from the file's metadata, then its name."
    )
    var env: String?

    @Option(parsing: .unconditional, help: "Episode length limit for files without 'timeouts' (D4RL v0).")
    var maxEpisodeSteps = 1000

    @OptionGroup var output: OutputOptions

    func validate() throws {
        // An environment of the catalog, or a D4RL task the catalog has no environment for
        // (maze2d-umaze), scored with D4RL's pair alone.
        if let env, EnvironmentCatalog.standard.lookUp(env) == nil {
            let task = D4RLReferenceScores.task(ofID: env)
            if task == nil || task.flatMap({ EnvironmentCatalog.standard.lookUp($0) }) != nil {
                _ = try environmentFlag("env", env)
            }
        }
        try requireFlag("max-episode-steps", maxEpisodeSteps, in: 1...Int.max)
    }

    func run() throws {
        let options = D4RLLoadOptions(maxEpisodeSteps: maxEpisodeSteps)
        var outcomes: [Outcome] = []
        for file in files {
            do {
                try FileProbe.check([file])
            } catch {
                // libhdf5 crashed on it: not even its keys can be listed safely.
                outcomes.append(.failure(file: file, keys: nil, error: "\(error)"))
                continue
            }
            do {
                let dataset = try D4RLDataset(file: file, options: options)
                let scoring = try Self.scoring(file: file, dataset: dataset, flag: env)
                outcomes.append(.report(try D4RLFileReport(file: file, dataset: dataset, scoring: scoring)))
            } catch {
                outcomes.append(.failure(file: file, keys: try? D4RLFileReport.listKeys(file), error: "\(error)"))
            }
        }
        if output.json {
            let encoder = JSONEncoder.prettySorted
            print(String(decoding: try encoder.encode(outcomes), as: UTF8.self))
        } else {
            for (index, outcome) in outcomes.enumerated() {
                if index > 0 { print() }
                print(outcome.text)
            }
        }
        if outcomes.contains(where: \.isFailure) { throw ExitCode(65) }
    }

    /// The environment `file`'s returns are scored as: `--env`, else the one its metadata
    /// names, else the one its file name names (`hopper-medium-v2.hdf5`), looked up in the
    /// catalog, whose widths must be the data's. A D4RL task the catalog has no environment
    /// for (`maze2d-umaze`) is still scored with D4RL's pair.
    ///
    /// - Throws: `D4RLError.dimensionMismatch` when the environment's widths are not the data's.
    static func scoring(file: String, dataset: D4RLDataset, flag: String?) throws -> D4RLFileReport.Scoring? {
        let fileName = URL(fileURLWithPath: file).lastPathComponent
        let candidates: [(id: String, source: String)] =
            [flag.map { ($0, "--env") }, dataset.environmentID.map { ($0, "metadata") }, (fileName, "file name")]
            .compactMap { $0 }
        for (id, source) in candidates {
            let task = D4RLReferenceScores.task(ofID: id)
            if let entry = EnvironmentCatalog.standard.lookUp(id) ?? task.flatMap({ EnvironmentCatalog.standard.lookUp($0) }) {
                do {
                    try entry.checkWidths(
                        observationWidth: dataset.observationDimension, actionWidth: dataset.actionDimension, of: "the data")
                } catch {
                    throw D4RLError(
                        .dimensionMismatch, file: file, key: "observations",
                        problem: "cannot be scored as \(entry.name) (from \(source)): \(error)",
                        remedy: "Pass --env with the environment the data was recorded in.")
                }
                return D4RLFileReport.Scoring(
                    environment: entry.name, environmentID: entry.id, source: source,
                    scores: dataset.recordedReferenceScores ?? entry.referenceScores)
            }
            if let task {
                return D4RLFileReport.Scoring(
                    environment: task, source: source,
                    scores: dataset.recordedReferenceScores ?? D4RLReferenceScores.published[task])
            }
        }
        return nil
    }

    /// A file's report, or why it could not be made.
    enum Outcome: Encodable {
        case report(D4RLFileReport)
        case failure(file: String, keys: [D4RLFileReport.Key]?, error: String)

        var isFailure: Bool {
            if case .failure = self { return true }
            return false
        }

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .report(let report):
                try report.encode(to: encoder)
            case .failure(let file, let keys, let error):
                var container = encoder.container(keyedBy: FailureKey.self)
                try container.encode(file, forKey: .file)
                try container.encodeIfPresent(keys, forKey: .keys)
                try container.encode(error, forKey: .error)
            }
        }

        private enum FailureKey: String, CodingKey { case file, keys, error }

        var text: String {
            switch self {
            case .report(let report):
                return InspectCommand.format(report)
            case .failure(let file, let keys, let error):
                var lines = [file]
                if let keys { lines += InspectCommand.format(keys) }
                lines.append("  error: \(error)")
                return lines.joined(separator: "\n")
            }
        }
    }

    static func format(_ keys: [D4RLFileReport.Key]) -> [String] {
        let width = keys.map(\.path.count).max() ?? 0
        return ["  keys"]
            + keys.map { key in
                let shape: String
                switch key.shape.count {
                case 0: shape = "scalar"
                case 1: shape = "(\(key.shape[0]),)"
                default: shape = "(" + key.shape.map(String.init).joined(separator: ", ") + ")"
                }
                var line = "    " + key.path.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                line += shape.padding(toLength: 14, withPad: " ", startingAt: 0)
                line += key.dtype.padding(toLength: 9, withPad: " ", startingAt: 0)
                if let chunks = key.chunks { line += "chunks " + chunks.map(String.init).joined(separator: "×") + " " }
                line += key.filters.joined(separator: " ")
                while line.hasSuffix(" ") { line.removeLast() }
                return line
            }
    }

    static func format(_ report: D4RLFileReport) -> String {
        func number(_ value: Double) -> String { String(format: "%.2f", value) }
        func summary(_ stats: SummaryStatistics) -> String {
            "mean \(number(stats.mean)) ± \(number(stats.std))   min \(number(stats.min))   max \(number(stats.max))"
        }
        var lines = [report.file]
        lines += format(report.keys)
        lines.append("  steps        \(report.steps)")
        var episodes =
            "  episodes     \(report.episodes.total)  (terminated \(report.episodes.terminated), truncated \(report.episodes.truncated + report.episodes.unfinished)"
        if report.episodes.unfinished > 0 {
            episodes += ", of which \(report.episodes.unfinished) unfinished at the end of the file"
        }
        lines.append(episodes + ")")
        lines.append("  return       \(summary(report.returns))")
        lines.append("  length       \(summary(report.lengths))")
        lines.append("  dims         observation \(report.observationDimension), action \(report.actionDimension)")
        if let id = report.metadata["dataset_id"] {
            lines.append("  minari       \(id) (version \(report.metadata["minari_version"]?.description ?? "unknown"))")
        }
        if let layout = report.metadata["observation_layout"] {
            lines.append("  observation  \(layout)")
        }
        // The catalog's label (`hopper (Hopper-v4)`, `Walker2d-v5`) when it knows the id.
        if let environment = report.environmentID.flatMap({ EnvironmentCatalog.standard.lookUp($0)?.label })
            ?? report.environment
        {
            lines.append("  environment  \(environment), from \(report.environmentSource ?? "?")")
        } else {
            lines.append("  environment  unknown (pass --env to score the returns)")
        }
        if let normalized = report.normalizedReturns {
            let source = report.metadata["ref_min_score"] != nil ? "the dataset's ref_min_score and ref_max_score" : "D4RL score"
            lines.append("  normalized   \(summary(normalized))   (\(source) ×100)")
        }
        return lines.joined(separator: "\n")
    }
}
