import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation
import ProcessGroups
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
            try training.runMonitored(source: runDirectory.configurationPath)
            saved = try RunCheckpoint.read(runDirectory.checkpointPath)
        }
        guard let saved else {
            throw TrainingError.runDirectory(path: runDirectory.path, problem: "holds no checkpoint after training")
        }
        var evaluation = try ReferenceEvaluation.evaluateRun(
            checkpoint: saved.checkpoint, source: runDirectory.checkpointPath, episodes: episodes ?? self.episodes,
            threads: configuration.threads)
        evaluation.evaluated = EvaluationRecord.evidence(for: saved)
        try evaluation.write(to: runDirectory.evaluationPath)
        return evaluation
    }

    /// What happened to one run in `completeRuns`.
    public enum Progress {
        /// Already evaluated: nothing to do.
        case alreadyDone
        /// Another process holds its directory (training at `step`): left to it.
        case inUse(step: Int)
        /// What `complete` is doing ("training 5000 steps", ...).
        case note(String)
        /// Trained and evaluated, in `seconds`.
        case finished(RunEvaluation, seconds: Double)
        /// It failed; the other runs go on.
        case failed(any Error)
    }

    /// Completes this process's share of the pending runs (`complete`, one after another):
    /// alone every run, in a group of N processes rank r's runs r, r + N, …, or only the run
    /// at `index` when one is given (a Slurm array task). Finished runs are skipped, and so are
    /// runs another process is training, or takes while this one tries to start it. A run that
    /// fails does not stop the others.
    ///
    /// - Parameters:
    ///   - index: only the run at this index of `runs`; nil for this process's share.
    ///   - episodes: episodes per target in each final evaluation; nil for the sweep's.
    ///   - group: the processes sharing the runs; each trains its runs alone.
    ///   - probe: checks each run's data files in a child process first (see `FileProbe`).
    ///   - progress: told about each run (its index in `runs`) as it goes.
    /// - Returns: the runs that failed.
    public func completeRuns(
        index: Int? = nil, episodes: Int? = nil, group: any ProcessGroup = SingleProcess(), probe: FileProbe? = nil,
        progress: (_ index: Int, Run, Progress) -> Void = { _, _, _ in }
    ) -> [Run] {
        let chosen = index.map { [$0] } ?? Array(stride(from: group.rank, to: runs.count, by: group.size))
        let clock = ContinuousClock()
        var failures: [Run] = []
        for runIndex in chosen {
            let run = runs[runIndex]
            switch state(of: run) {
            case .done:
                progress(runIndex, run, .alreadyDone)
                continue
            case .running(let step):
                progress(runIndex, run, .inUse(step: step))
                continue
            case .stopped, .pending:
                break
            case .evaluationRejected(_, let reason):
                progress(runIndex, run, .note("not done: \(reason)"))
            }
            let started = clock.now
            do {
                let evaluation = try complete(run, episodes: episodes, probe: probe) { progress(runIndex, run, .note($0)) }
                progress(runIndex, run, .finished(evaluation, seconds: (clock.now - started) / .seconds(1)))
            } catch {
                // Another process may have taken the run meanwhile (two sweeps started at
                // once): its lock, or the run it finished, is not a failure of this one.
                switch state(of: run) {
                case .done: progress(runIndex, run, .alreadyDone)
                case .running(let step): progress(runIndex, run, .inUse(step: step))
                default:
                    progress(runIndex, run, .failed(error))
                    failures.append(run)
                }
            }
        }
        return failures
    }
}
