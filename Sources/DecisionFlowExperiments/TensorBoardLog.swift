import DecisionFlowSupport
import DecisionFlowTraining
import Foundation

/// A run's log as a TensorBoard event file (`RunDirectory.eventsPath`, see
/// `TensorBoardEvents`): `d4rl-run train` and `sweep run` attach one to every run.
///
/// The file is rewritten from the log when a run starts or resumes, so that it holds what the
/// log holds (lines after the last checkpoint are dropped from both), and keeps the run's
/// start time from its first record.
public final class TensorBoardLog: TrainingLogSink {
    /// When the run started (seconds since 1970), the origin of the events' wall times.
    private var startTime = 0.0

    /// A sink to attach to `TrainingRun.logSinks`.
    public init() {}

    public func restart(in directory: RunDirectory, lines: [LogLine], step: Int) throws {
        let path = directory.eventsPath
        let earlier = FileManager.default.contents(atPath: path).flatMap { try? TensorBoardEvents.parse($0) } ?? []
        // A resumed run keeps the start time of the event file's first record; without one
        // (a new run, or a lost file), it counts back from now by the time already trained.
        if step > 0, let first = earlier.first {
            startTime = first.wallTime
        } else {
            startTime = Date().timeIntervalSince1970 - (lines.last?.elapsedSeconds ?? 0)
        }
        // A resumed run whose log lost its lines: the events up to its checkpoint are the only
        // record of them, kept rather than wiped.
        if lines.isEmpty, step > 0, earlier.count > 1 {
            let kept = earlier.filter { $0.fileVersion != nil || $0.step <= Int64(step) }
            try AtomicFile.write(TensorBoardEvents.file(events: kept), to: path)
            return
        }
        try AtomicFile.write(TensorBoardEvents.file(startTime: startTime, lines: lines), to: path)
    }

    public func append(_ line: LogLine, in directory: RunDirectory) throws {
        try AppendingFile.append(TensorBoardEvents.record(for: line, startTime: startTime), to: directory.eventsPath)
    }
}
