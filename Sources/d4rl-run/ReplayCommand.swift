import ArgumentParser
import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowSupport
import Foundation
import RLData
import RLEnvironments

/// `d4rl-run replay`: how well our simulator reproduces a dataset's recorded transitions.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a D4RL file's transitions in the matching MuJoCo environment and report the agreement.",
        discussion: """
            For every row: set the simulator state from infos/qpos and infos/qvel, apply the \
            recorded action, and compare the result with next_observations (largest component \
            error), rewards (relative error) and terminals.
            """
    )

    @Argument(
        help: "D4RL files with infos/qpos, infos/qvel and next_observations.",
        completion: .file(extensions: ["hdf5", "h5"]))
    var files: [String]

    @Option(help: "A MuJoCo environment's name or gymnasium id (Walker2d-v5; `d4rl-run environments` lists them). Default: from the file's metadata.")
    var env: String?

    @Option(parsing: .unconditional, help: "Replay at most this many transitions per file.")
    var limit: Int?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let limit { try requireFlag("limit", limit, in: 1...Int.max) }
        if let env { _ = try environmentFlag("env", env) }
    }

    func run() throws {
        var reports: [ReplayReport] = []
        for file in files {
            try FileProbe.check([file])
            let entry: EnvironmentEntry
            if let env {
                entry = try environmentFlag("env", env)
            } else {
                guard let id = try D4RLDataset(file: file).environmentID else {
                    throw ValidationError("\(file): cannot tell the environment from its metadata; pass --env")
                }
                guard let known = EnvironmentCatalog.standard.lookUp(id) else {
                    throw ValidationError("\(file): its metadata names environment '\(id)', which the catalog does not know; pass --env")
                }
                entry = known
            }
            guard let environment = try entry.make() as? MuJoCoEnvironment else {
                throw ValidationError(
                    "\(entry.label) is not a MuJoCo environment; replay needs one (`d4rl-run environments` lists the environments)")
            }
            reports.append(try DatasetReplay.run(file: file, environment: environment, limit: limit))
        }
        if output.json {
            let encoder = JSONEncoder.prettySorted
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
            return
        }
        for report in reports {
            print("\(report.file)  (\(report.environment), \(report.transitions) transitions)")
            print(String(format: "  next observation within 1e-4   %6.2f%%", 100 * report.observationsWithin1e4))
            print(String(format: "  next observation within 0.1    %6.2f%%", 100 * report.observationsWithin0_1))
            print(
                String(
                    format: "  contact-free, within 1e-4      %6.2f%% of %d",
                    100 * report.contactFreeObservationsWithin1e4, report.contactFreeTransitions))
            print(String(format: "  reward within 1e-3 relative    %6.2f%%", 100 * report.rewardsWithin1e3Relative))
            print(String(format: "  terminal flag agrees           %6.2f%%", 100 * report.terminalsAgree))
            print(
                "  observation error p50 / p90 / p99: "
                    + report.observationErrorPercentiles.map { String(format: "%.2g", $0) }.joined(separator: " / "))
        }
    }
}
