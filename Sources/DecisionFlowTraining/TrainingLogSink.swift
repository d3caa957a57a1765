/// Somewhere a run's log lines go besides `log.jsonl`: TensorBoard's event file
/// (`TensorBoardLog` in DecisionFlowExperiments), or a caller's own dashboard. Attach it to
/// `TrainingRun.logSinks` before `run`; only rank 0 calls it.
public protocol TrainingLogSink: AnyObject {
    /// The run's log holds exactly `lines` now (none for a new run; after a resume, those up to
    /// its checkpoint at `step`): bring what this sink keeps in `directory` in step with them.
    /// A resumed run (`step` > 0) whose log lost its lines keeps what the sink has up to `step`.
    func restart(in directory: RunDirectory, lines: [LogLine], step: Int) throws
    /// `line` was just appended to the log.
    func append(_ line: LogLine, in directory: RunDirectory) throws
}
