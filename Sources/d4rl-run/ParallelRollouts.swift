import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowTraining
import ProcessGroups
import RLData
import RLEnvironments

/// Rollouts split across the processes of a group: rank r runs its contiguous share of the
/// episodes (episode i still resets with seed + i), and every rank gets all results, in
/// episode order. With one process this is `RolloutEvaluation.run` itself.
enum ParallelRollouts {
    /// Runs this process's share with `model` (batch capacity at least the share) in
    /// `environments` (one per episode of the share), and gathers every process's results.
    static func run(
        group: any ProcessGroup, count: Int, model: DecisionTransformer, encoding: ContextEncoding,
        environments: [any Environment], target: Double, seed: UInt64, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [EpisodeResult] {
        let share = group.slice(of: count)
        precondition(environments.count == share.count, "one environment per episode of this process's share")
        let local =
            share.isEmpty
            ? []
            : try RolloutEvaluation.run(
                model: model, encoding: encoding, environments: environments, target: target,
                seed: seed &+ UInt64(share.lowerBound), progress: progress)
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
}

/// The evaluations a training run gets: periodic ones while it trains, and the final one under
/// the reference protocol that a sweep records as `evaluation.json`.
enum RunEvaluations {
    /// Rolls a copy of the trainer's current policy out in the data's environment every
    /// `evaluateEvery` steps; nil when evaluation is off. `source` names the configuration in
    /// errors.
    static func periodic(for trainer: Trainer, source: String) throws -> ((Trainer) throws -> Double)? {
        let c = trainer.configuration
        guard c.evaluateEvery > 0 else { return nil }
        guard let name = trainer.environment, D4RLReferenceScores.forEnvironment(name) != nil else {
            throw TrainingError.badConfiguration(
                file: source,
                problem:
                    "evaluateEvery needs an environment with D4RL scores (hopper, halfcheetah, walker2d); set environment"
            )
        }
        // Under mpirun each rank rolls out its share of the episodes.
        let share = trainer.group.slice(of: c.evaluationEpisodes)
        let environments = try share.map { _ in try EnvironmentRegistry.make(name) }
        let target = c.evaluationTarget ?? D4RLReferenceScores.evaluationTargets[name]?.first ?? 0
        return { trainer in
            let model = DecisionTransformer(
                checkpoint: Checkpoint(model: trainer.model), batchCapacity: max(share.count, 1), threads: c.threads)
            let episodes = try ParallelRollouts.run(
                group: trainer.group, count: c.evaluationEpisodes, model: model, encoding: trainer.encoding,
                environments: environments, target: target, seed: 0)
            return RolloutEvaluation.report(target: target, episodes: episodes, environment: name).normalizedMean
                ?? .nan
        }
    }

    /// The reference protocol on a checkpoint (read from `path`, which names it in errors):
    /// `episodes` episodes (seeds 0, 1, ...) at each of the environment's reference targets, in
    /// the environment the checkpoint names.
    static func final(checkpoint saved: Checkpoint, source path: String, episodes: Int, threads: Int) throws
        -> RunEvaluation
    {
        let encoding = try saved.contextEncoding(source: path)
        guard let name = saved.environment.flatMap({ D4RLReferenceScores.environmentName(forID: $0) }),
            let targets = D4RLReferenceScores.evaluationTargets[name]
        else {
            throw TrainingError.badConfiguration(
                file: path,
                problem:
                    "names no environment with reference targets (hopper, halfcheetah, walker2d), so it cannot be evaluated under the reference protocol; set environment in the configuration")
        }
        let model = try DecisionTransformer(checkpoint: saved, batchCapacity: episodes, threads: threads, source: path)
        let environments = try (0..<episodes).map { _ in try EnvironmentRegistry.make(name) }
        var scores: [RunEvaluation.Target] = []
        for target in targets {
            let results = try RolloutEvaluation.run(
                model: model, encoding: encoding, environments: environments, target: target, seed: 0)
            let report = RolloutEvaluation.report(target: target, episodes: results, environment: name)
            scores.append(
                RunEvaluation.Target(
                    target: target, episodes: results.count, returnMean: report.returnMean, returnStd: report.returnStd,
                    normalizedMean: report.normalizedMean, normalizedStd: report.normalizedStd))
        }
        let step = (saved.optimizer?.step).map { Int($0) } ?? 0
        return RunEvaluation(environment: name, step: step, targets: scores)
    }
}
