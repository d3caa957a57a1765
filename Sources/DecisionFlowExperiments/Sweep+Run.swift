import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation
import RLData

extension Sweep {
    /// Brings `run` to done: trains it (or resumes it from its checkpoint) to its last step,
    /// with periodic evaluation and a TensorBoard log as configured, then evaluates it under
    /// the reference protocol (`episodes` per target, or the sweep's) and writes
    /// `evaluation.json` atomically. A run already at its last step (stopped during its final
    /// evaluation) is only evaluated. Everything happens in this process.
    ///
    /// - Parameters:
    ///   - run: one of `runs`.
    ///   - episodes: episodes per target in the final evaluation; nil for the sweep's.
    ///   - probe: checks the run's data files in a child process first (see `FileProbe`).
    ///   - note: told what is happening ("training 5000 steps", "resuming at step 300 of 5000").
    /// - Returns: the evaluation written.
    @discardableResult
    public func complete(
        _ run: Run, episodes: Int? = nil, probe: FileProbe? = nil, note: (String) -> Void = { _ in }
    ) throws -> RunEvaluation {
        let runDirectory = directory(of: run)
        // A started run's checkpoint is its record (and config.json must agree with it).
        var saved = runDirectory.holdsCheckpoint ? try TrainingRun.savedCheckpoint(in: runDirectory.path) : nil
        let configuration = try saved?.configuration ?? self.configuration(of: run)
        if let trained = saved, trained.state.step >= configuration.steps {
            note("trained to step \(configuration.steps), evaluating")
        } else {
            let resuming = saved != nil
            let training = try TrainingRun.startOrResume(
                configuration: configuration, directory: runDirectory.path, probe: probe,
                source: runDirectory.configurationPath)
            note(
                resuming
                    ? "resuming at step \(training.trainer.step) of \(configuration.steps)"
                    : "training \(configuration.steps) steps")
            training.logSinks.append(TensorBoardLog())
            let evaluator = try PeriodicEvaluation.evaluator(for: training.trainer, source: runDirectory.configurationPath)
            _ = try training.run(evaluate: evaluator)
            saved = try RunCheckpoint.read(runDirectory.checkpointPath)
        }
        guard let saved else {
            throw TrainingError.runDirectory(path: runDirectory.path, problem: "holds no checkpoint after training")
        }
        let evaluation = try ReferenceEvaluation.evaluateRun(
            checkpoint: saved.checkpoint, source: runDirectory.checkpointPath, episodes: episodes ?? self.episodes,
            threads: configuration.threads)
        try AtomicFile.write(try JSONEncoder.prettySorted.encode(evaluation), to: runDirectory.evaluationPath)
        return evaluation
    }
}
