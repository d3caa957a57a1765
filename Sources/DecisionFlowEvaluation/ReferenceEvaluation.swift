import DecisionFlow
import DecisionFlowCheckpoints
import ProcessGroups
import RLData
import RLEnvironments

/// The reference evaluation protocol applied to a saved policy, over the processes of a
/// group: what `d4rl-run evaluate` runs, what a sweep records for each finished run, and what
/// periodic evaluation during training rolls out.
///
/// Episode i of a target resets its environment with seed `seed + i`, whichever process runs
/// it; with several processes, rank r runs its contiguous share of the episodes and every
/// rank gets all results, in episode order.
public enum ReferenceEvaluation {
    /// Rolls out this process's share of `count` episodes with `weights` (read in place) in
    /// `environments` (one per episode of the share), and gathers every process's results.
    /// With one process this is `RolloutEvaluation.run` itself.
    ///
    /// Every process of `group` must call this together.
    public static func rollOut(
        group: any ProcessGroup, count: Int, weights: ModelWeights, encoding: ContextEncoding,
        environments: [any Environment], target: Double, seed: UInt64, threads: Int,
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [EpisodeResult] {
        let share = group.slice(of: count)
        precondition(environments.count == share.count, "one environment per episode of this process's share")
        let local =
            share.isEmpty
            ? []
            : try RolloutEvaluation.run(
                weights: weights, encoding: encoding, environments: environments, target: target,
                seed: seed &+ UInt64(share.lowerBound), threads: threads, progress: progress)
        guard group.size > 1 else { return local }
        // Equal-sized contributions (the largest share), padded with NaN, in rank order.
        let widest = (count + group.size - 1) / group.size
        var mine = [Double](repeating: .nan, count: 2 * widest)
        for (index, result) in local.enumerated() {
            mine[2 * index] = result.episodeReturn
            mine[2 * index + 1] = Double(result.length)
        }
        let all = try group.allGather(mine)
        var results: [EpisodeResult] = []
        for rank in 0..<group.size {
            for index in 0..<widest {
                let offset = rank * 2 * widest + 2 * index
                guard !all[offset + 1].isNaN else { continue }
                results.append(EpisodeResult(episodeReturn: all[offset], length: Int(all[offset + 1])))
            }
        }
        return results
    }

    /// The environment `evaluate` rolls `checkpoint` (read from `source`) out in: the one
    /// `environment` names, or else the one the checkpoint names, looked up in `catalog`; nil
    /// when neither names one. A task named without a version (`walker2d`) gets the version
    /// the checkpoint recorded (`walker2d-v5`), as training resolves it.
    ///
    /// - Throws: `EnvironmentError` for an `environment` the catalog does not know (with close
    ///   matches); `EvaluationError.unknownEnvironment` naming `source` for a checkpoint whose
    ///   environment it does not know.
    public static func environment(
        _ environment: String?, checkpoint: Checkpoint, source: String, catalog: EnvironmentCatalog = .standard
    ) throws -> EnvironmentEntry? {
        let recorded = checkpoint.environment.flatMap { catalog.lookUp($0) }
        if let environment { return try catalog.entry(environment, recordedIn: recorded) }
        guard let name = checkpoint.environment else { return nil }
        guard let recorded else {
            var problem = ""
            do { _ = try catalog.entry(name) } catch { problem = "\(error)" }
            throw EvaluationError.unknownEnvironment(file: source, name: name, problem: problem)
        }
        return recorded
    }

    /// Evaluates the policy in `checkpoint`: `episodes` episodes (seeds `seed`, `seed + 1`, …)
    /// at each target, in `environment`, split across `group`'s processes.
    ///
    /// - Parameters:
    ///   - checkpoint: the policy: weights, context encoding and, usually, its environment.
    ///   - source: the checkpoint's file, for errors.
    ///   - environment: an environment's name or id; nil for the one the checkpoint names.
    ///   - targets: target returns in the environment's scale; nil for the environment's
    ///     (`EnvironmentEntry.defaultTargets`).
    ///   - episodes: episodes per target.
    ///   - seed: the reset seed of the first episode.
    ///   - threads: the policy's worker threads.
    ///   - group: the processes to split the episodes over; every one must call this.
    ///   - catalog: where the environment is looked up; your own environments are found once
    ///     registered there.
    ///   - progress: called on rank 0's progress with the target, the episodes finished and
    ///     the steps taken.
    /// - Returns: the environment's name and a report per target, on every process.
    /// - Throws: `EvaluationError` when no environment is named; `CheckpointError` when the
    ///   checkpoint holds no context encoding or the model does not fit in memory;
    ///   `EnvironmentError` for an unknown environment, or one whose widths are not the model's.
    public static func evaluate(
        checkpoint: Checkpoint, source: String, environment: String? = nil, targets: [Double]? = nil, episodes: Int,
        seed: UInt64 = 0, threads: Int = 2, group: any ProcessGroup = SingleProcess(),
        catalog: EnvironmentCatalog = .standard,
        progress: (_ target: Double, _ finished: Int, _ steps: Int) -> Void = { _, _, _ in }
    ) throws -> (environment: String, reports: [TargetReport]) {
        let encoding = try checkpoint.contextEncoding(source: source)
        guard let entry = try Self.environment(environment, checkpoint: checkpoint, source: source, catalog: catalog) else {
            throw EvaluationError.noEnvironment(file: source)
        }
        try entry.checkWidths(
            observationWidth: checkpoint.configuration.stateDimension,
            actionWidth: checkpoint.configuration.actionDimension, of: "the model in \(source)")
        let targets = targets ?? entry.defaultTargets
        let share = group.slice(of: episodes)
        let environments = try share.map { _ in try entry.make() }
        if let problem = checkpoint.configuration.actingMemoryProblem(agents: max(share.count, 1), threads: threads) {
            throw CheckpointError(file: source, problem: "cannot be run here: \(problem)")
        }
        let weights = ModelWeights(checkpoint: checkpoint)
        var reports: [TargetReport] = []
        for target in targets {
            let results = try rollOut(
                group: group, count: episodes, weights: weights, encoding: encoding, environments: environments,
                target: target, seed: seed, threads: threads
            ) { finished, steps in
                if group.isLeader { progress(target, finished, steps) }
            }
            reports.append(TargetReport(target: target, episodes: results, scores: entry.referenceScores))
        }
        return (entry.name, reports)
    }

    /// The final evaluation a run records as `evaluation.json`: the reference protocol on
    /// `checkpoint` (read from `source`, which names it in errors), `episodes` episodes
    /// (seeds 0, 1, …) at each of the environment's reference targets, in the environment the
    /// checkpoint names, all in this process (a sweep's rank evaluates its own runs).
    public static func evaluateRun(checkpoint: Checkpoint, source: String, episodes: Int, threads: Int) throws
        -> RunEvaluation
    {
        let (name, reports) = try evaluate(
            checkpoint: checkpoint, source: source, episodes: episodes, seed: 0, threads: threads)
        let step = (checkpoint.optimizer?.step).map { Int($0) } ?? 0
        return RunEvaluation(environment: name, step: step, targets: reports.map(\.scores))
    }
}
