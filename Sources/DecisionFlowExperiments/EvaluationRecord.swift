import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import DecisionFlowTraining
import Foundation

/// A run's `evaluation.json`, checked against the run it sits in before it is believed.
///
/// An evaluation records what it evaluated (`RunEvaluation.evaluated`): the checkpoint's
/// checksum, the configuration's fingerprint and the data's. It holds only while the run's
/// checkpoint is that checkpoint, at that step, trained with that configuration on that data.
/// A file that cannot be read, records nothing (DecisionFlow 0.2 wrote none), holds no target
/// or a non-finite score, or belongs to another checkpoint is rejected with the reason; the
/// run is then not done, and a sweep evaluates it again.
public enum EvaluationRecord {
    /// What a run directory's evaluation amounts to.
    public enum Verdict {
        /// No `evaluation.json`.
        case missing
        /// It holds: the evaluation and the checkpoint it evaluated.
        case valid(RunEvaluation, RunCheckpoint)
        /// It cannot be believed, for `reason` (a sentence that names the file).
        case rejected(reason: String)
    }

    /// What `evaluation` records for the run checkpoint `saved` it evaluated.
    public static func evidence(for saved: RunCheckpoint) -> EvaluatedRun {
        EvaluatedRun(
            checkpoint: saved.checkpoint.checksum ?? "", configuration: saved.configuration.fingerprint,
            data: saved.state.dataFingerprint)
    }

    /// Checks the evaluation in `directory` against its checkpoint.
    public static func check(_ directory: RunDirectory) -> Verdict {
        let path = directory.evaluationPath
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .missing }
        guard !isDirectory.boolValue else { return .rejected(reason: "\(path) is a folder, not an evaluation") }
        let evaluation: RunEvaluation
        do {
            evaluation = try RunEvaluation.read(path)
        } catch {
            return .rejected(reason: "\(error)")
        }
        guard let evaluated = evaluation.evaluated else {
            return .rejected(
                reason:
                    "\(path) does not record which checkpoint it evaluated (DecisionFlow 0.2 wrote none, or it was edited); the run is evaluated again"
            )
        }
        guard !evaluation.targets.isEmpty else { return .rejected(reason: "\(path) holds no target's scores") }
        for target in evaluation.targets {
            let values = [target.target, target.returnMean, target.returnStd] + [target.normalizedMean, target.normalizedStd]
                .compactMap { $0 }
            if let bad = values.first(where: { !$0.isFinite }) {
                return .rejected(reason: "\(path) holds a non-finite score (\(bad)) for target \(target.target)")
            }
        }
        let saved: RunCheckpoint
        do {
            saved = try TrainingRun.savedCheckpoint(in: directory.path)
        } catch {
            return .rejected(reason: "\(path) cannot be checked against the run's checkpoint: \(error)")
        }
        let current = evidence(for: saved)
        if evaluated.checkpoint != current.checkpoint || evaluation.step != saved.state.step {
            return .rejected(
                reason:
                    "\(path) evaluated checkpoint \(evaluated.checkpoint) at step \(evaluation.step), but the run's checkpoint is \(current.checkpoint) at step \(saved.state.step) (it trained on, or a file was replaced); the run is evaluated again"
            )
        }
        if evaluated.configuration != current.configuration {
            return .rejected(
                reason:
                    "\(path) evaluated a run configured otherwise (fingerprint \(evaluated.configuration), the checkpoint's is \(current.configuration)); the run is evaluated again"
            )
        }
        if evaluated.data != current.data {
            return .rejected(
                reason:
                    "\(path) evaluated a run on other data (fingerprint \(evaluated.data ?? "none"), the checkpoint's is \(current.data ?? "none")); the run is evaluated again"
            )
        }
        return .valid(evaluation, saved)
    }
}
