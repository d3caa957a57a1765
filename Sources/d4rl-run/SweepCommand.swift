import ArgumentParser
import DecisionFlow
import DecisionFlowMPI
import DecisionFlowSupport
import DecisionFlowEvaluation
import DecisionFlowExperiments
import DecisionFlowTraining
import Foundation
import ProcessGroups
import RLData

/// `d4rl-run sweep plan|run|status`: grids of runs, run one after another, across the ranks
/// of an mpirun, or one per Slurm array task.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Plan a grid of training runs, run the pending ones, and show where they stand.",
        discussion: """
            A specification (configs/sweeps/*.json) names presets (configs), fields applied to \
            every point (base), and a grid of configuration fields with the values to try \
            (grid; datasets, attention, seed or any other field). `plan` writes one run \
            directory per point; `run` trains each pending run and evaluates it under the \
            reference protocol (evaluation.json); `report` turns the evaluations into a table.
            """,
        subcommands: [SweepPlanCommand.self, SweepRunCommand.self, SweepStatusCommand.self]
    )
}

/// `d4rl-run sweep plan SPEC -o DIR`.
struct SweepPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Expand a sweep specification into run directories.")

    @Argument(help: "The sweep specification (JSON).", completion: .file(extensions: ["json"]))
    var specification: String

    @Option(name: .shortAndLong, help: "The sweep directory to create.")
    var output: String

    func validate() throws { try requirePath("output", output) }

    func run() throws {
        let sweep = try Sweep.plan(specification: specification, into: output)
        print("planned \(sweep.runs.count) runs of \(sweep.name) in \(output) (\(sweep.episodes) evaluation episodes per target):")
        for (index, run) in sweep.runs.enumerated() { print("  \(index)  \(run.name)") }
        print("run them with: d4rl-run sweep run \(output)   (or under mpirun, or --index N per Slurm array task)")
    }
}

/// `d4rl-run sweep run DIR [--index N]`.
struct SweepRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train and evaluate a sweep's pending runs.",
        discussion: """
            Finished runs (evaluation.json) are skipped, stopped runs resume from their \
            checkpoint, runs another process is training are left to it. Alone, this process \
            takes every run in turn; under `mpirun -np N` rank r takes runs r, r + N, ..., each \
            trained by one process; with --index (a Slurm array task: --index \
            $SLURM_ARRAY_TASK_ID) it takes that one run. Each run ends with the reference \
            evaluation: the sweep's episodes at both targets, written to evaluation.json.
            """)

    @Argument(help: "The sweep directory (from `sweep plan`).", completion: .directory)
    var directory: String

    @Option(parsing: .unconditional, help: "Run only the run with this index (0-based, as `sweep plan` lists them).")
    var index: Int?

    @Option(parsing: .unconditional, help: "Episodes per target in the final evaluation. Default: the sweep's (10).")
    var episodes: Int?

    func validate() throws {
        if let index { try requireFlag("index", index, in: 0...Int.max) }
        if let episodes { try requireFlag("episodes", episodes, in: 1...10_000) }
    }

    func run() throws {
        let sweep = try Sweep.open(directory)
        let group: any ProcessGroup = try MPIProcessGroup.launched() ?? SingleProcess()
        if let index, index >= sweep.runs.count {
            throw ValidationError("--index \(index) is past the sweep's last run (\(sweep.runs.count - 1))")
        }
        if index != nil, group.size > 1 {
            throw ValidationError(
                "--index picks one run for one process; under mpirun leave it out (rank r takes runs r, r + \(group.size), …), or start one process per run (a Slurm array)")
        }
        let prefix = group.size > 1 ? "rank \(group.rank): " : ""
        var statuses: [Int: Int32] = [:]  // exit status of each failed run, by index
        _ = sweep.completeRuns(index: index, episodes: episodes, group: group, probe: .tool) {
            runIndex, run, progress in
            let label = "\(prefix)[\(runIndex + 1)/\(sweep.runs.count)] \(run.name)"
            switch progress {
            case .alreadyDone: print("\(label): done, skipped")
            case .inUse(let step): print("\(label): being trained by another process (step \(step)), skipped")
            case .note(let text): print("\(label): \(text)")
            case .finished(let evaluation, let seconds):
                let scores = evaluation.targets.map { target in
                    target.normalizedMean.map { String(format: "%.0f: %.1f", target.target, $0) }
                        ?? String(format: "%.0f: –", target.target)
                }
                print(String(format: "%@: done in %.1f s; normalized score %@", label, seconds, scores.joined(separator: ", ")))
            case .failed(let error):
                let (status, message) = D4RLRun.status(for: error) ?? (D4RLRun.ExitStatus.software, "\(error)")
                statuses[runIndex] = status
                standardError("\(label): failed: \(message)\n")
            }
        }
        // Every rank learns every failure (a failed run never aborts the others: each rank
        // finished its own runs before this), and rank 0 names them all.
        // This rank's failed runs are the indices the progress recorded a status for.
        let failed = try Self.gatherFailures(statuses, group: group)
        guard let first = failed.first else { return }
        if group.isLeader {
            let names = failed.map { failure in
                "\(sweep.runs[failure.index].name)" + (group.size > 1 ? " (rank \(failure.rank))" : "")
            }
            standardError(
                "error: \(directory): \(failed.count) run(s) failed: \(names.joined(separator: ", ")); the other runs are done. Fix the cause and run the sweep again: it continues where they stopped\n"
            )
        }
        throw ExitCode(first.status)
    }

    /// The failed runs of every rank (this rank's: `statuses`, exit status by run index), in
    /// run order: (run index, rank, exit status). Every rank of `group` calls this once, after
    /// its runs.
    static func gatherFailures(_ statuses: [Int: Int32], group: any ProcessGroup) throws
        -> [(index: Int, rank: Int, status: Int32)]
    {
        let indices = statuses.keys.sorted()
        guard group.size > 1 else { return indices.map { ($0, 0, statuses[$0]!) } }
        // Equal-sized contributions, padded with NaN: a rank fails at most all of its share.
        let counts = try group.allGather([Double(indices.count)])
        let widest = Int(counts.max() ?? 0)
        guard widest > 0 else { return [] }
        var mine = [Double](repeating: .nan, count: 2 * widest)
        for (slot, index) in indices.enumerated() {
            mine[2 * slot] = Double(index)
            mine[2 * slot + 1] = Double(statuses[index]!)
        }
        let all = try group.allGather(mine)
        var failed: [(index: Int, rank: Int, status: Int32)] = []
        for rank in 0..<group.size {
            for slot in 0..<widest where !all[rank * 2 * widest + 2 * slot].isNaN {
                let offset = rank * 2 * widest + 2 * slot
                failed.append((Int(all[offset]), rank, Int32(all[offset + 1])))
            }
        }
        return failed.sorted { $0.index < $1.index }
    }
}

/// `d4rl-run sweep status DIR`.
struct SweepStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show which runs of a sweep are done, running, stopped or pending.")

    @Argument(help: "The sweep directory.", completion: .directory)
    var directory: String

    @OptionGroup var output: OutputOptions

    func run() throws {
        let sweep = try Sweep.open(directory)
        var rows: [(index: Int, name: String, state: String, step: Int?, steps: Int?, score: String, reason: String?)] = []
        for (index, run) in sweep.runs.enumerated() {
            let steps = try? sweep.configuration(of: run).steps
            var score = ""
            let state: String
            var step: Int?
            var reason: String?
            switch sweep.state(of: run) {
            case .done:
                state = "done"
                step = steps
                if let evaluation = try? RunEvaluation.read(sweep.directory(of: run).evaluationPath) {
                    score = evaluation.targets.compactMap { $0.normalizedMean.map { String(format: "%.1f", $0) } }.joined(
                        separator: " / ")
                }
            case .running(let at):
                state = "running"
                step = at
            case .stopped(let at):
                state = "stopped"
                step = at
            case .pending:
                state = "pending"
            case .evaluationRejected(let at, let why):
                state = "stale"  // evaluated, but the evaluation does not hold: not done
                step = at
                reason = why
            }
            rows.append((index, run.name, state, step, steps, score, reason))
        }
        if output.json {
            let objects: [[String: Any]] = rows.map { row in
                var object: [String: Any] = ["index": row.index, "name": row.name, "state": row.state]
                if let step = row.step { object["step"] = step }
                if let steps = row.steps { object["steps"] = steps }
                if !row.score.isEmpty { object["normalized"] = row.score }
                if let reason = row.reason { object["reason"] = reason }
                return object
            }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let width = max(4, rows.map(\.name.count).max() ?? 0)
        print("sweep \(sweep.name) in \(directory): \(sweep.runs.count) runs")
        print("  #    " + "run".padding(toLength: width, withPad: " ", startingAt: 0) + "  state     step          normalized")
        for row in rows {
            let progress = row.step.map { "\($0)/\(row.steps.map(String.init) ?? "?")" } ?? "-"
            print(
                "  " + String(row.index).padding(toLength: 4, withPad: " ", startingAt: 0) + " "
                    + row.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + row.state.padding(toLength: 9, withPad: " ", startingAt: 0) + " "
                    + progress.padding(toLength: 13, withPad: " ", startingAt: 0) + " " + row.score)
            if let reason = row.reason { print("       not done: \(reason)") }
        }
        var counts: [String: Int] = [:]
        for row in rows { counts[row.state, default: 0] += 1 }
        print(
            "  " + ["done", "running", "stopped", "stale", "pending"].map { "\(counts[$0] ?? 0) \($0)" }.joined(separator: ", "))
    }
}
