import ArgumentParser
import DecisionFlowExperiments
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation

/// `d4rl-run plot`: learning curves of one or more runs as an SVG image.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw the learning curves of training runs as an SVG image.",
        discussion: """
            Reads each run directory's log.jsonl and draws the training loss (log scale) \
            against step, with one colored curve per run, and the D4RL normalized score beside \
            it when a run logged evaluations. Open the SVG in any browser.
            """
    )

    @Argument(help: "Run directories (as written by `d4rl-run train --out`).", completion: .directory)
    var runs: [String]

    @Option(name: .shortAndLong, help: "The SVG file to write.")
    var output = "learning-curves.svg"

    @Option(help: "The title above the plot.")
    var title = "Learning curves"

    func validate() throws {
        try requirePath("output", output)
        try requireOutputApart("output", output, from: runs)
    }

    func run() throws {
        var series: [LearningCurvePlot.Series] = []
        for run in runs.map(RunDirectory.init) {
            guard FileManager.default.fileExists(atPath: run.logPath) else {
                throw ValidationError("\(run) has no log.jsonl; is it a run directory written by `d4rl-run train`?")
            }
            let lines = TrainingRun.readLog(run.logPath)
            guard !lines.isEmpty else { throw ValidationError("\(run.logPath) holds no log lines yet") }
            series.append(LearningCurvePlot.Series(name: run.name, lines: lines))
        }
        let svg = LearningCurvePlot(series: series, title: title).svg()
        try AtomicFile.write(Data(svg.utf8), to: output)
        print(
            "wrote \(output): \(series.count) run\(series.count == 1 ? "" : "s"), \(series.map(\.lines.count).reduce(0, +)) log points"
        )
    }
}
