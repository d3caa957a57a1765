import ArgumentParser
import DecisionFlowSupport
import Foundation
import RLEnvironments

/// `d4rl-run environments`: the environment catalog, as the other commands resolve names.
struct EnvironmentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "environments",
        abstract: "List the environments --env, presets and datasets can name.",
        discussion: """
            Each environment has a name (what runs and checkpoints record), a gymnasium id and \
            aliases; any of them, in any case, names it, and so does a D4RL dataset id \
            (hopper-medium-v2 is hopper: D4RL recorded in gym's v3, which is v4 here). Your own \
            environments join the catalog in code (EnvironmentCatalog.standard.register).
            """
    )

    @OptionGroup var output: OutputOptions

    func run() throws {
        let entries = EnvironmentCatalog.standard.entries
        if output.json {
            let rows = entries.map { entry in
                Row(
                    name: entry.name, id: entry.id, aliases: entry.aliases, version: entry.version,
                    observationWidth: entry.observationWidth, actionWidth: entry.actionWidth,
                    maxEpisodeSteps: entry.maxEpisodeSteps, referenceMinimum: entry.referenceScores?.minimum,
                    referenceMaximum: entry.referenceScores?.maximum, targets: entry.targets)
            }
            print(String(decoding: try JSONEncoder.prettySorted.encode(rows), as: UTF8.self))
            return
        }
        let header = ["name", "id", "aliases", "obs", "act", "steps", "D4RL reference (random, expert)", "targets"]
        let table = entries.map { entry in
            [
                entry.name, entry.id, entry.aliases.joined(separator: " "), "\(entry.observationWidth)",
                "\(entry.actionWidth)", "\(entry.maxEpisodeSteps)",
                entry.referenceScores.map { "\(Self.number($0.minimum)), \(Self.number($0.maximum))" } ?? "-",
                entry.targets.isEmpty ? "- (0)" : entry.targets.map(Self.number).joined(separator: ", "),
            ]
        }
        let widths = header.indices.map { column in ([header] + table).map { $0[column].count }.max() ?? 0 }
        for row in [header] + table {
            var line = zip(row, widths).map { $0.padding(toLength: $1 + 2, withPad: " ", startingAt: 0) }.joined()
            while line.hasSuffix(" ") { line.removeLast() }
            print(line)
        }
    }

    /// A number without a trailing `.0`.
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// One entry, as `--json` prints it.
    struct Row: Encodable {
        var name: String
        var id: String
        var aliases: [String]
        var version: Int?
        var observationWidth: Int
        var actionWidth: Int
        var maxEpisodeSteps: Int
        var referenceMinimum: Double?
        var referenceMaximum: Double?
        var targets: [Double]
    }
}
