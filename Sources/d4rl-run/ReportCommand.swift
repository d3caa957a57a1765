import ArgumentParser
import DecisionFlowExperiments
import DecisionFlowSupport
import Foundation

/// `d4rl-run report DIR…`: the results table of evaluated runs.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print the results table of sweeps or evaluated runs: a row per dataset, a column per model.",
        discussion: """
            Runs that differ only in their seed (and in bookkeeping: threads, logging, \
            checkpoints, periodic evaluation) are averaged: each cell is the D4RL normalized \
            score's mean ± std over seeds, per target, with an average row. Runs that differ in \
            anything else are never averaged together: what differs between the runs of a \
            dataset makes the columns, or, with --columns, any other difference is an error \
            naming the fields. Markdown on standard output; --csv, --json and --svg write files.
            """)

    @Argument(help: "Sweep directories or run directories (with evaluation.json).", completion: .directory)
    var directories: [String]

    @Option(help: "Comma-separated configuration fields that make the columns (e.g. attention).")
    var columns: String?

    @Option(help: "Also write the cells as CSV to this file.")
    var csv: String?

    @Option(help: "Also write the cells as JSON to this file.")
    var json: String?

    @Option(help: "Also write a bar chart with error bars (SVG) to this file.")
    var svg: String?

    func validate() throws {
        for (flag, path) in [("csv", csv), ("json", json), ("svg", svg)] {
            guard let path else { continue }
            try requirePath(flag, path)
            try requireOutputApart(flag, path, from: directories)
        }
        try requireDistinctOutputs([("csv", csv), ("json", json), ("svg", svg)])
    }

    func run() throws {
        let fields = try columns.map { try listFlag("columns", $0) }
        let table = try ResultsTable.collect(directories, columns: fields)
        print(table.markdown)
        // Each output is made only when asked for.
        let outputs: [(String?, () throws -> String)] = [(csv, { table.csv }), (json, { try table.json() }), (svg, { table.svg })]
        for (path, text) in outputs {
            guard let path else { continue }
            try AtomicFile.write(Data((try text() + "\n").utf8), to: path)
        }
    }
}
