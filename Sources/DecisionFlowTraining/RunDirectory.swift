import DecisionFlow
import DecisionFlowCheckpoints
import Foundation

/// A run directory and every file in it, named here and nowhere else.
///
/// - `config.json`: a readable copy of the run's configuration. The checkpoint's training
///   state is the record; `resume` refuses a `config.json` that disagrees with it.
/// - `log.jsonl`: one JSON line per `logEvery` steps (`LogLine`).
/// - `events.out.tfevents.decisionflow`: the log's scalars for TensorBoard.
/// - `checkpoint.safetensors`: weights, optimizer, context encoding and training state,
///   replaced atomically (`checkpoint.safetensors.tmp-PID` while it is written).
/// - `evaluation.json`: the reference evaluation a sweep records when the run is done.
/// - `.lock`: held (`flock`) by the process training in the directory.
public struct RunDirectory: Sendable, Hashable, CustomStringConvertible {
    /// The directory, as given (absolute, or relative to the working directory).
    public let path: String

    /// The run directory at `path`.
    public init(_ path: String) { self.path = path }

    /// The directory as a file URL.
    public var url: URL { URL(fileURLWithPath: path) }

    /// `config.json`.
    public var configurationPath: String { file("config.json") }
    /// `log.jsonl`.
    public var logPath: String { file("log.jsonl") }
    /// The TensorBoard event file. TensorBoard reads every file whose name contains
    /// `tfevents`; one fixed name lets a resumed run rewrite it to match its log.
    public var eventsPath: String { file("events.out.tfevents.decisionflow") }
    /// `checkpoint.safetensors`.
    public var checkpointPath: String { file(Self.checkpointName) }
    /// `evaluation.json`, a sweep's record of the finished run's evaluation.
    public var evaluationPath: String { file("evaluation.json") }
    /// `.lock`.
    var lockPath: String { file(".lock") }

    /// Whether the directory holds a checkpoint (a run was started in it).
    public var holdsCheckpoint: Bool { FileManager.default.fileExists(atPath: checkpointPath) }

    /// The directory's name (its last path component), as tables and plots label a run.
    public var name: String { url.lastPathComponent }

    /// The path, as given.
    public var description: String { path }

    private static let checkpointName = "checkpoint.safetensors"

    private func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// The partial checkpoints in the directory that writes killed midway left behind
    /// (`Checkpoint.write` writes beside the file, then renames).
    func partialCheckpoints() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let prefix = Checkpoint.temporaryPath(for: Self.checkpointName, process: "")
        return names.filter { $0.hasPrefix(prefix) }.sorted().map(file)
    }
}
