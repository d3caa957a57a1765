import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowTraining
import ProcessGroups
import RLData
import RLEnvironments

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
            let episodes = try ReferenceEvaluation.rollOut(
                group: trainer.group, count: c.evaluationEpisodes, model: model, encoding: trainer.encoding,
                environments: environments, target: target, seed: 0)
            return RolloutEvaluation.report(target: target, episodes: episodes, environment: name).normalizedMean
                ?? .nan
        }
    }

    /// The reference protocol on a checkpoint (read from `path`, which names it in errors):
    /// `episodes` episodes (seeds 0, 1, ...) at each of the environment's reference targets, in
    /// the environment the checkpoint names, all in this process (as a sweep's rank runs its
    /// own runs), recorded as a sweep records it.
    static func final(checkpoint saved: Checkpoint, source path: String, episodes: Int, threads: Int) throws
        -> RunEvaluation
    {
        let (name, reports) = try ReferenceEvaluation.evaluate(
            checkpoint: saved, source: path, episodes: episodes, seed: 0, threads: threads)
        let scores = reports.map { report in
            RunEvaluation.Target(
                target: report.target, episodes: report.episodes.count, returnMean: report.returnMean,
                returnStd: report.returnStd, normalizedMean: report.normalizedMean, normalizedStd: report.normalizedStd)
        }
        let step = (saved.optimizer?.step).map { Int($0) } ?? 0
        return RunEvaluation(environment: name, step: step, targets: scores)
    }
}
