import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import DecisionFlowTraining
import ProcessGroups
import RLData
import RLEnvironments

/// Evaluation while a run trains: where training (which rolls nothing out) meets the
/// reference protocol.
public enum PeriodicEvaluation {
    /// What `TrainingRun.run(evaluate:)` calls every `evaluateEvery` steps: the trainer's
    /// current weights, read in place (nothing is copied), rolled out in the data's environment, `evaluationEpisodes`
    /// episodes at `evaluationTarget` (or the environment's first reference target), split
    /// over the trainer's processes; nil when evaluation is off.
    ///
    /// - Throws: `TrainingError.badConfiguration` naming `source` when evaluation is on but the
    ///   data's environment has no D4RL reference scores.
    public static func evaluator(for trainer: Trainer, source: String) throws -> ((Trainer) throws -> Double)? {
        let c = trainer.configuration
        guard c.evaluateEvery > 0 else { return nil }
        guard let environment = trainer.environment, let scores = environment.referenceScores else {
            throw TrainingError.badConfiguration(
                file: source,
                problem:
                    "evaluateEvery needs an environment with D4RL scores (\(EnvironmentCatalog.standard.entries.filter { $0.referenceScores != nil }.map(\.name).joined(separator: ", "))); set environment"
            )
        }
        // Under mpirun each rank rolls out its share of the episodes.
        let share = trainer.group.slice(of: c.evaluationEpisodes)
        let environments = try share.map { _ in try environment.make() }
        let target = c.evaluationTarget ?? environment.defaultTargets[0]
        return { trainer in
            let episodes = try ReferenceEvaluation.rollOut(
                group: trainer.group, count: c.evaluationEpisodes, weights: trainer.model.weights,
                encoding: trainer.encoding, environments: environments, target: target, seed: 0, threads: c.threads)
            return TargetReport(target: target, episodes: episodes, scores: scores).normalizedMean
                ?? .nan
        }
    }
}

extension TrainingRun {
    /// Trains to the last step as `d4rl-run train` and `sweep run` do: with the periodic
    /// evaluation the configuration asks for (`PeriodicEvaluation`) and, on rank 0, a
    /// TensorBoard event file beside the log (`TensorBoardLog`). `source` names the
    /// configuration in errors; `onStep` as in `run(onStep:evaluate:)`.
    @discardableResult
    public func runMonitored(source: String, onStep: (StepRecord, Double) -> Void = { _, _ in }) throws -> [StepRecord] {
        let evaluator = try PeriodicEvaluation.evaluator(for: trainer, source: source)
        if trainer.group.isLeader, !logSinks.contains(where: { $0 is TensorBoardLog }) {
            logSinks.append(TensorBoardLog())
        }
        return try run(onStep: onStep, evaluate: evaluator)
    }
}
