import DecisionFlow
import DecisionFlowCheckpoints
import RLEnvironments

extension DecisionPolicy {
    /// A policy from a checkpoint, with the catalog entry of the environment it acts in: the
    /// one the checkpoint names, or `environment`. The entry's widths are checked against the
    /// model's, so `entry.make()` gives a simulator the policy fits; `entry.defaultTargets`
    /// are the returns to aim for. Your own environments are found once registered in
    /// `catalog`.
    ///
    /// - Parameters:
    ///   - checkpointPath: a checkpoint written by `d4rl-run train` or `d4rl-run import`.
    ///   - environment: an environment's name or id; nil for the one the checkpoint names.
    ///   - agents: how many agents act through the policy.
    ///   - threads: worker threads for each step's passes.
    ///   - catalog: where the environment is looked up.
    /// - Throws: `CheckpointError` as `init(checkpointPath:agents:threads:)` does,
    ///   `EvaluationError.noEnvironment` when neither names an environment, and
    ///   `EnvironmentError` for an unknown one or one of other widths than the model.
    public static func withEnvironment(
        checkpointPath: String, environment: String? = nil, agents: Int = 1, threads: Int = 1,
        catalog: EnvironmentCatalog = .standard
    ) throws -> (policy: DecisionPolicy, environment: EnvironmentEntry) {
        let checkpoint = try Checkpoint.read(checkpointPath)
        guard
            let entry = try ReferenceEvaluation.environment(
                environment, checkpoint: checkpoint, source: checkpointPath, catalog: catalog)
        else {
            throw EvaluationError.noEnvironment(file: checkpointPath)
        }
        try entry.checkWidths(
            observationWidth: checkpoint.configuration.stateDimension,
            actionWidth: checkpoint.configuration.actionDimension, of: "the model in \(checkpointPath)")
        let policy = try DecisionPolicy(checkpoint: checkpoint, source: checkpointPath, agents: agents, threads: threads)
        return (policy, entry)
    }
}
