import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowSupport
import Foundation
import ProcessGroups
import RLData

#if canImport(Glibc)
    import Glibc
#endif

/// One line of a run's `log.jsonl`.
public struct LogLine: Codable, Sendable, Equatable {
    /// The training step this line was written at.
    public var step: Int
    /// Mean training loss over the steps since the previous line.
    public var loss: Double
    /// The learning rate of that step.
    public var learningRate: Float
    /// Gradient norm (before clipping) of the last step.
    public var gradientNorm: Float
    /// Seconds of training since the run started (across resumes).
    public var elapsedSeconds: Double
    /// Steps per second over the steps since the previous line.
    public var stepsPerSecond: Double
    /// D4RL normalized score ×100 of an evaluation at this step, when one ran.
    public var normalizedScore: Double?
    /// Configuration changes made when the run was resumed, on the first line after it.
    public var changes: [String]?

    /// Creates a line; see the properties for the meaning of each value.
    public init(
        step: Int, loss: Double, learningRate: Float, gradientNorm: Float, elapsedSeconds: Double,
        stepsPerSecond: Double, normalizedScore: Double? = nil, changes: [String]? = nil
    ) {
        self.step = step
        self.loss = loss
        self.learningRate = learningRate
        self.gradientNorm = gradientNorm
        self.elapsedSeconds = elapsedSeconds
        self.stepsPerSecond = stepsPerSecond
        self.normalizedScore = normalizedScore
        self.changes = changes
    }

    enum CodingKeys: String, CodingKey {
        case step, loss
        case learningRate = "learning_rate"
        case gradientNorm = "grad_norm"
        case elapsedSeconds = "elapsed_seconds"
        case stepsPerSecond = "steps_per_second"
        case normalizedScore = "normalized_score"
        case changes
    }
}

/// A training run on disk, in a `RunDirectory`: `config.json` (a readable copy of the
/// configuration), `log.jsonl` (one line per `logEvery` steps, also given to each of
/// `logSinks`, such as DecisionFlowExperiments' TensorBoard event file) and
/// `checkpoint.safetensors` (weights,
/// optimizer and training state, replaced atomically every `checkpointEvery` steps and at the
/// end). The checkpoint's training state is the record of the run's configuration.
///
/// A run killed at any moment leaves its last checkpoint intact; `resume` continues from it
/// and gives the same losses, bit for bit, as a run that was never interrupted (same seed and
/// threads). Log lines written after that checkpoint are dropped on resume.
public final class TrainingRun {
    /// The run directory and its files.
    public let directory: RunDirectory
    /// The trainer, with the model, optimizer and sampler.
    public let trainer: Trainer
    /// What the user should know about the run's files (an old checkpoint format, a change
    /// made on resume).
    public internal(set) var notes: [String] = []
    private var elapsedBefore: Double
    /// Held from `start`/`resume` until `run` returns (and again during any later `run`): no
    /// second trainer works in this directory meanwhile.
    private var lock: RunDirectoryLock?
    /// Configuration changes made on resume, for the next log line.
    private var pendingChanges: [String] = []
    /// Every rank's parameter checksum at the last checkpoint, when several processes train
    /// (all equal, or the run stopped); empty for one process.
    public private(set) var rankChecksums: [UInt64] = []
    /// Where the log's lines go besides `log.jsonl` (rank 0 only). Each is brought in step with
    /// the log when `run` starts, then given every new line.
    public var logSinks: [any TrainingLogSink] = []

    private init(directory: RunDirectory, trainer: Trainer, elapsedBefore: Double, lock: RunDirectoryLock?) {
        self.directory = directory
        self.trainer = trainer
        self.elapsedBefore = elapsedBefore
        self.lock = lock
    }

    /// Starts a new run in `directory` (created if needed).
    ///
    /// - Throws: `TrainingError.runDirectory` if the directory already holds a checkpoint:
    ///   resume it, or choose another directory, rather than overwrite it.
    ///
    /// With a group of several processes, every process calls this; only rank 0 touches the
    /// directory (it creates, locks and writes it), the others train alongside.
    public static func start(
        configuration: TrainingConfiguration, dataset: D4RLDataset, directory path: String,
        group: any ProcessGroup = SingleProcess()
    ) throws -> TrainingRun {
        try start(
            checked: configuration.validated(source: "configuration"), dataset: dataset, directory: path, group: group)
    }

    /// `start(configuration:dataset:directory:group:)` for a configuration validated just
    /// before; `source` names it in errors.
    private static func start(
        checked configuration: TrainingConfiguration, dataset: D4RLDataset, directory path: String,
        group: any ProcessGroup, source: String = "configuration"
    ) throws -> TrainingRun {
        let directory = RunDirectory(path)
        guard group.isLeader else {
            let trainer = try Trainer(checked: configuration, dataset: dataset, group: group, source: source)
            return TrainingRun(directory: directory, trainer: trainer, elapsedBefore: 0, lock: nil)
        }
        func refuseExistingRun() throws {
            guard directory.holdsCheckpoint else { return }
            throw TrainingError.runDirectory(
                path: path,
                problem: "already holds a run (checkpoint.safetensors); continue it with --resume \(path), or choose another --out"
            )
        }
        try refuseExistingRun()
        // The trainer first: a configuration that cannot train leaves no run directory behind.
        let trainer = try Trainer(checked: configuration, dataset: dataset, group: group, source: source)
        do {
            try FileManager.default.createDirectory(at: directory.url, withIntermediateDirectories: true)
        } catch {
            // The world refused (read-only, no permission, a file in the way): an I/O failure.
            throw FileWriteError(file: path, problem: FileProblem.describe(error, writing: path), code: FileProblem.code(error))
        }
        let lock = try RunDirectoryLock(directory)
        // Checked again under the lock: another process may have started here meanwhile.
        try refuseExistingRun()
        let removed = lock.removeStaleTemporaryFiles()
        try writeConfiguration(configuration, in: directory)
        let run = TrainingRun(directory: directory, trainer: trainer, elapsedBefore: 0, lock: lock)
        try run.rewriteLog([])  // an empty log.jsonl
        run.notes += removed
        return run
    }

    /// The data `configuration` names (D4RL files or Minari datasets, concatenated), each file
    /// checked by `probe` in a child process first when one is given (see `FileProbe`).
    public static func loadData(for configuration: TrainingConfiguration, probe: FileProbe? = nil) throws -> D4RLDataset {
        try probe?.check(configuration.datasets)
        return try D4RLDataset(
            files: configuration.datasets, options: D4RLLoadOptions(maxEpisodeSteps: configuration.maxEpisodeSteps))
    }

    /// Starts a new run of `configuration` in `directory`, loading its data (`loadData`).
    /// `source` names the configuration in errors (its file, or the flags that made it).
    public static func start(
        configuration: TrainingConfiguration, directory: String, probe: FileProbe? = nil,
        group: any ProcessGroup = SingleProcess(), source: String = "configuration"
    ) throws -> TrainingRun {
        // Validated once, here, before the data is loaded: a bad value fails at once.
        let configuration = try configuration.validated(source: source)
        return try start(
            checked: configuration, dataset: try loadData(for: configuration, probe: probe), directory: directory,
            group: group, source: source)
    }

    /// Resumes the run in `directory` on the data its checkpoint names (`loadData`); `adjust`
    /// as in `resume(directory:dataset:group:adjust:)`.
    public static func resume(
        directory: String, probe: FileProbe? = nil, group: any ProcessGroup = SingleProcess(),
        adjust: (inout TrainingConfiguration) throws -> Void = { _ in }
    ) throws -> TrainingRun {
        try resume(directory: directory, group: group, adjust: adjust) { try loadData(for: $0, probe: probe) }
    }

    /// The run in `directory`, ready to train: resumed when it holds a checkpoint, otherwise
    /// started with `configuration` (what a sweep does with each of its runs); `source` names
    /// the configuration in errors.
    public static func startOrResume(
        configuration: TrainingConfiguration, directory: String, probe: FileProbe? = nil,
        group: any ProcessGroup = SingleProcess(), source: String = "configuration"
    ) throws -> TrainingRun {
        RunDirectory(directory).holdsCheckpoint
            ? try resume(directory: directory, probe: probe, group: group)
            : try start(configuration: configuration, directory: directory, probe: probe, group: group, source: source)
    }

    /// `config.json`, pretty-printed with sorted keys for a person to read, written atomically.
    ///
    /// - Throws: `FileWriteError` naming the file.
    private static func writeConfiguration(_ configuration: TrainingConfiguration, in directory: RunDirectory) throws {
        try AtomicFile.write(try JSONEncoder.prettySorted.encode(configuration), to: directory.configurationPath)
    }

    /// The checkpoint of the run in `directory`, read and verified, and checked against the
    /// run's `config.json`: what `resume` continues from (read it first to load the run's data).
    ///
    /// `config.json` is a readable copy of the checkpoint's configuration. If it says
    /// otherwise in a field that decides what is learned (it was edited, or belongs to another
    /// run), this throws, naming every such field and both values. A difference only in fields
    /// a resume may change (a resume stopped before its change reached config.json, or an edit)
    /// is no error: `resume` writes config.json again from the checkpoint, with a note. A
    /// missing config.json is not needed.
    ///
    /// - Throws: `TrainingError.runDirectory` when the directory holds no checkpoint, the
    ///   checkpoint cannot be used, or `config.json` disagrees with it in a fixed field.
    public static func savedCheckpoint(in path: String) throws -> RunCheckpoint {
        try savedCheckpointAndCopy(in: RunDirectory(path)).saved
    }

    /// Refuses a directory with no checkpoint, saying what to do instead.
    private static func requireCheckpoint(in directory: RunDirectory) throws {
        guard directory.holdsCheckpoint else {
            var isDirectory: ObjCBool = false
            let exists = !directory.path.isEmpty && FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory)
            throw TrainingError.runDirectory(
                path: directory.path.isEmpty ? "''" : directory.path,
                problem: !exists
                    ? "does not exist; name the run directory to resume (the --out of `d4rl-run train`)"
                    : !isDirectory.boolValue
                        ? "is a file, not a run directory; name the folder that holds checkpoint.safetensors"
                        : "holds no checkpoint.safetensors to resume; start a run there with --out instead")
        }
    }

    /// `savedCheckpoint(in:)`, with the `config.json` it was checked against (nil when there is
    /// none), each read once.
    private static func savedCheckpointAndCopy(in directory: RunDirectory) throws -> (
        saved: RunCheckpoint, copy: TrainingConfiguration?
    ) {
        try requireCheckpoint(in: directory)
        let saved: RunCheckpoint
        do {
            saved = try RunCheckpoint.read(directory.checkpointPath)
        } catch let error as CheckpointError {
            throw TrainingError.runDirectory(
                path: directory.path, problem: "its checkpoint cannot be used: \(error.problem)")
        }
        guard FileManager.default.fileExists(atPath: directory.configurationPath) else { return (saved, nil) }
        let copy = try TrainingConfiguration.read(directory.configurationPath)
        let differing = TrainingConfiguration.fixedOnResume(copy.fieldsChanged(from: saved.configuration))
        if !differing.isEmpty {
            let fields = differing.map {
                "\($0.name) is \(copy.text(of: $0)) there but \(saved.configuration.text(of: $0)) in the checkpoint"
            }
            throw TrainingError.runDirectory(
                path: directory.configurationPath,
                problem:
                    "disagrees with the run's checkpoint, which records how the run trains: \(fields.joined(separator: "; ")). One of the two was edited or replaced (by another run's file). If the checkpoint is the run's own, delete config.json and resume writes it again from the checkpoint; if config.json is, restore the checkpoint from a backup. To change a field that may change on resume, pass its flag with --resume"
            )
        }
        return (saved, copy)
    }

    /// Resumes the run in `directory` from its checkpoint, with the run's own configuration
    /// except for `steps`, which may be raised to train longer.
    public static func resume(
        directory: String, dataset: D4RLDataset, steps: Int? = nil, group: any ProcessGroup = SingleProcess()
    ) throws -> TrainingRun {
        try resume(directory: directory, dataset: dataset, group: group) { configuration in
            if let steps { configuration.steps = steps }
        }
    }

    /// Resumes the run in `directory` from its checkpoint (`savedCheckpoint(in:)`). `adjust`
    /// may change the fields that `ConfigurationField.changeableOnResume` allows; each change
    /// is written to the checkpoint and `config.json` at once, to the next log line
    /// (`changes`) and to `notes`.
    public static func resume(
        directory path: String, dataset: D4RLDataset, group: any ProcessGroup = SingleProcess(),
        adjust: (inout TrainingConfiguration) throws -> Void
    ) throws -> TrainingRun {
        try resume(directory: path, group: group, adjust: adjust) { _ in dataset }
    }

    /// Resumes the run in `path`: the checkpoint is read once, under the directory's lock, and
    /// `data` loads the data its configuration names.
    private static func resume(
        directory path: String, group: any ProcessGroup, adjust: (inout TrainingConfiguration) throws -> Void,
        data: (TrainingConfiguration) throws -> D4RLDataset
    ) throws -> TrainingRun {
        let directory = RunDirectory(path)
        // Nothing to resume: refused before a lock file is created.
        try requireCheckpoint(in: directory)
        // Every process reads the same checkpoint; only rank 0 locks and rewrites the directory.
        let lock = group.isLeader ? try RunDirectoryLock(directory) : nil
        let removed = lock?.removeStaleTemporaryFiles() ?? []
        let (saved, copy) = try savedCheckpointAndCopy(in: directory)
        // Fields a resume may change that config.json states otherwise: the checkpoint wins.
        let stale = copy?.fieldsChanged(from: saved.configuration) ?? []
        let dataset = try data(saved.configuration)
        let trainer = try Trainer(
            resuming: saved, dataset: dataset, source: directory.checkpointPath, group: group, adjust: adjust)
        // Keep the log consistent with the checkpoint: drop lines from steps after it.
        let lines = readLog(directory.logPath).filter { $0.step <= trainer.step }
        let run = TrainingRun(
            directory: directory, trainer: trainer, elapsedBefore: lines.last?.elapsedSeconds ?? 0, lock: lock)
        // The checkpoint stays the record: what changed is saved in it before anything else
        // (every rank takes part, as in any checkpoint), then in config.json.
        if !trainer.changesOnResume.isEmpty { try run.saveCheckpoint() }
        guard group.isLeader else { return run }
        run.notes = saved.checkpoint.notes + removed
        if lines.isEmpty, trainer.step >= saved.configuration.logEvery {
            run.notes.append(
                "\(directory.logPath) held no line up to step \(trainer.step) (deleted or damaged): the log starts again here; a TensorBoard event file, if any, keeps the earlier scalars"
            )
        }
        try run.rewriteLog(lines)
        if !stale.isEmpty {
            run.notes.append(
                "config.json said \(stale.map { "\($0.name) \(copy?.text(of: $0) ?? "unset")" }.joined(separator: ", ")), but the checkpoint records \(stale.map { "\($0.name) \(saved.configuration.text(of: $0))" }.joined(separator: ", ")) (a resume stopped before its change reached config.json, or an edit): config.json is written again from the checkpoint; to change a field, pass its flag with --resume"
            )
        }
        if !trainer.changesOnResume.isEmpty || !stale.isEmpty || copy == nil {
            try writeConfiguration(trainer.configuration, in: directory)
        }
        if !trainer.changesOnResume.isEmpty {
            run.pendingChanges = trainer.changesOnResume.map { "at step \(trainer.step): \($0)" }
            run.notes += trainer.changesOnResume.map { "changed on resume: \($0)" }
            if trainer.changesOnResume.contains(where: { $0.hasPrefix("threads ") }) {
                run.notes.append(
                    "with another thread count the run stays reproducible from here, but no longer repeats an uninterrupted run bit for bit (products are split differently)"
                )
            }
        }
        return run
    }

    /// Reads a run's log; unreadable lines (a line cut short by a kill) are skipped.
    public static func readLog(_ path: String) -> [LogLine] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            return []  // no log yet
        }
        let decoder = JSONDecoder()
        var lines: [LogLine] = []
        for line in text.split(separator: "\n") {
            do {
                lines.append(try decoder.decode(LogLine.self, from: Data(line.utf8)))
            } catch {
                continue  // a line cut short by a kill
            }
        }
        return lines
    }

    func rewriteLog(_ lines: [LogLine]) throws {
        let logPath = directory.logPath
        let encoder = JSONEncoder.sorted
        var data = Data()
        for line in lines {
            data.append(try encoder.encode(line))
            data.append(0x0A)
        }
        try AtomicFile.write(data, to: logPath)
    }

    private func append(_ line: LogLine) throws {
        var data = try JSONEncoder.sorted.encode(line)
        data.append(0x0A)
        try AppendingFile.append(data, to: directory.logPath)
        for sink in logSinks { try sink.append(line, in: directory) }
    }

    /// Writes the checkpoint now (atomically).
    ///
    /// With several processes every one calls this together: their parameter checksums are
    /// compared first (the run stops with `TrainingError.ranksDiverged` if any differs), then
    /// rank 0 writes the checkpoint.
    public func saveCheckpoint() throws {
        var streams: [RandomGenerator]?
        if trainer.group.size > 1 {
            let ranks = try trainer.gatherRanks()
            rankChecksums = ranks.checksums
            if let bad = ranks.checksums.firstIndex(where: { $0 != ranks.checksums[0] }) {
                throw TrainingError.ranksDiverged(
                    step: trainer.step, rank: bad, checksums: ranks.checksums.map { String($0, radix: 16) })
            }
            streams = ranks.dropoutGenerators
        }
        guard trainer.group.isLeader else { return }
        try trainer.checkpoint(rankDropoutGenerators: streams).write(to: directory.checkpointPath)
    }

    /// Trains until `trainer.configuration.steps` steps, logging and checkpointing as
    /// configured. `onStep` sees every step (for progress display) with the seconds elapsed.
    /// `evaluate`, when given, is called every `evaluateEvery` steps and at the end with the
    /// trainer, and returns a D4RL normalized score that goes into that step's log line (the
    /// caller rolls the policy out; training itself knows no environments). It must leave the
    /// trainer as it found it.
    ///
    /// - Throws: `TrainingError.nonFinite` if the loss diverges; the last checkpoint on disk
    ///   is then left untouched.
    @discardableResult
    public func run(
        onStep: (StepRecord, Double) -> Void = { _, _ in }, evaluate: ((Trainer) throws -> Double)? = nil
    ) throws -> [StepRecord] {
        let isLeader = trainer.group.isLeader
        if lock == nil, isLeader { lock = try RunDirectoryLock(directory) }
        defer { lock = nil }  // the directory is free for the next process once training stops
        if isLeader, !logSinks.isEmpty {
            let lines = Self.readLog(directory.logPath)
            for sink in logSinks { try sink.restart(in: directory, lines: lines, step: trainer.step) }
        }
        let configuration = trainer.configuration
        let clock = ContinuousClock()
        let started = clock.now
        var lastLogTime = 0.0
        var lossSum = 0.0
        var lossCount = 0
        var records: [StepRecord] = []
        func elapsed() -> Double {
            let duration = clock.now - started
            return duration / .seconds(1)
        }
        while trainer.step < configuration.steps {
            let record: StepRecord
            do {
                record = try trainer.trainStep()
            } catch TrainingError.nonFinite(let step, let what, _) {
                let last = directory.holdsCheckpoint ? directory.checkpointPath : nil
                throw TrainingError.nonFinite(step: step, what: what, lastCheckpoint: last)
            }
            records.append(record)
            lossSum += Double(record.loss)
            lossCount += 1
            let now = elapsed()
            onStep(record, now)
            let last = record.step == configuration.steps
            var score: Double?
            if let evaluate, configuration.evaluateEvery > 0, record.step % configuration.evaluateEvery == 0 || last {
                score = try evaluate(trainer)
            }
            if isLeader, record.step % configuration.logEvery == 0 || last || score != nil {
                try append(
                    LogLine(
                        step: record.step, loss: lossSum / Double(lossCount), learningRate: record.learningRate,
                        gradientNorm: record.gradientNorm, elapsedSeconds: elapsedBefore + now,
                        stepsPerSecond: Double(lossCount) / max(now - lastLogTime, 1e-9), normalizedScore: score,
                        changes: pendingChanges.isEmpty ? nil : pendingChanges))
                pendingChanges = []
                lastLogTime = now
                lossSum = 0
                lossCount = 0
            }
            if record.step % configuration.checkpointEvery == 0 || last {
                try saveCheckpoint()
            }
        }
        return records
    }
}
