import ArgumentParser
import DecisionFlowExperiments
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation
import RLEnvironments

/// `--threads`, for every command that runs the model.
struct ThreadOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Worker threads (default 2; train: the preset's). Results repeat exactly for a given seed and thread count.",
            valueName: "n"))
    var threads: Int?

    /// The count asked for, or `fallback`.
    func count(default fallback: Int = 2) -> Int { threads ?? fallback }

    func validate() throws {
        if let threads { try requireFlag("threads", threads, in: 1...1024) }
    }
}

/// `--seed`, for every command that draws random numbers or resets environments.
struct SeedOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Random seed (default: train 1 or the preset's; evaluate 0, episode i resets with seed + i). The same seed repeats the command exactly.",
            valueName: "n"))
    var seed: UInt64?
}

/// `--json`, for every command whose report a program may read.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON instead of text.")
    var json = false
}

/// Refuses a number given to `--flag` outside `range`, naming the flag, the range and the value.
func requireFlag(_ flag: String, _ value: Int, in range: ClosedRange<Int>) throws {
    guard !range.contains(value) else { return }
    if range.upperBound == .max {
        throw ValidationError("--\(flag) must be at least \(range.lowerBound) (it is \(value))")
    }
    throw ValidationError("--\(flag) must be from \(range.lowerBound) to \(range.upperBound) (it is \(value))")
}

/// The items of a comma-separated list given to `--flag`; an empty list or an empty item is a
/// usage error (a command that would measure or report nothing must not exit 0).
func listFlag(_ flag: String, _ text: String) throws -> [String] {
    let items = text.split(separator: ",", omittingEmptySubsequences: false).map {
        $0.trimmingCharacters(in: .whitespaces)
    }
    guard !items.contains(where: \.isEmpty) else {
        throw ValidationError("--\(flag) takes a comma-separated list with no empty item (it is '\(text)')")
    }
    return items
}

/// The catalog's environment named by `--flag` (a name such as `hopper` or an id such as
/// `Walker2d-v5`); an unknown or ambiguous one is a usage error with the close matches.
func environmentFlag(_ flag: String, _ name: String) throws -> EnvironmentEntry {
    do {
        return try EnvironmentCatalog.standard.entry(name)
    } catch let error as EnvironmentError {
        throw ValidationError("--\(flag): \(error)")
    }
}

/// Refuses an output path that names nothing (`-o ''`).
func requirePath(_ flag: String, _ path: String) throws {
    if path.trimmingCharacters(in: .whitespaces).isEmpty {
        throw ValidationError("--\(flag) names nothing; give a path")
    }
}

/// A benchmark's default step counts (`StepTiming`).
protocol StepTimingDefaults {
    /// Timed steps.
    static var steps: Int { get }
    /// Untimed warm-up steps before them.
    static var warmup: Int { get }
}

/// `--steps`, `--warmup` and `--threads`, for the benchmarks that time training steps.
struct StepTiming<Defaults: StepTimingDefaults>: ParsableArguments {
    @Option(parsing: .unconditional, help: "Timed steps (the median or the mean is reported, as the benchmark says).")
    var steps: Int = Defaults.steps

    @Option(parsing: .unconditional, help: "Untimed warm-up steps before them.")
    var warmup: Int = Defaults.warmup

    @OptionGroup var threadOptions: ThreadOptions

    /// Worker threads (default 2).
    var threads: Int { threadOptions.count() }

    func validate() throws {
        try requireFlag("steps", steps, in: 1...1_000_000)
        try requireFlag("warmup", warmup, in: 0...1_000_000)
    }
}

/// This tool's own executable, which benchmarks start again to measure in a fresh process.
var thisExecutable: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }

/// Runs this tool with `arguments` in a child process and returns what it printed.
///
/// - Throws: `failure(status, killed)` when the child exits non-zero (`killed`: a signal ended it).
/// Ends this process when its parent ends: a benchmark's child measurement must not outlive
/// the command that started it (`timeout` or Ctrl-C stops only the parent, and the child would
/// run on with nobody to read its result).
func exitWhenOrphaned() {
    let parent = getppid()
    Thread.detachNewThread {
        while getppid() == parent { usleep(200_000) }
        exit(70)
    }
}

func childOutput(_ arguments: [String], failure: (Int32, Bool) -> any Error) throws -> Data {
    let process = Process()
    process.executableURL = thisExecutable
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw failure(process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }
    return data
}

/// Writes `text` to standard error, and ignores a failure to: Foundation's
/// `FileHandle.write` traps when the write fails (standard error on a full disk or past a
/// file-size limit), which would turn a refused command into a crash.
func standardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        guard var next = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = Glibc.write(2, next, left)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            next += written
            left -= written
        }
    }
}

/// Refuses an output that would replace a file of the run or sweep directories a command
/// reads (`report SW --csv SW/sweep.json`, `plot RUN -o RUN/log.jsonl`): a report must never
/// destroy its own evidence. Other files inside them (a table beside the runs) are fine.
func requireOutputApart(_ flag: String, _ output: String, from inputs: [String]) throws {
    let run = RunDirectory("")
    let reserved = [Sweep.planFile, run.configurationPath, run.logPath, run.eventsPath, run.checkpointPath, run.evaluationPath]
        .map { FilePath.name(of: $0) } + [".lock"]
    guard reserved.contains(FilePath.name(of: output)) else { return }
    func resolved(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
    let folder = resolved(FilePath.folder(of: output))
    for input in inputs {
        let directory = resolved(input)
        if folder == directory || folder.hasPrefix(directory + "/") {
            throw ValidationError(
                "--\(flag) \(output) would replace a file of \(input), which this command reads; write it elsewhere")
        }
    }
}

/// Refuses two outputs of one command that name the same file: one would silently replace
/// the other.
func requireDistinctOutputs(_ outputs: [(flag: String, path: String?)]) throws {
    let given = outputs.compactMap { output in output.path.map { (output.flag, URL(fileURLWithPath: $0).standardizedFileURL.path) } }
    for (index, first) in given.enumerated() {
        if let second = given[(index + 1)...].first(where: { $0.1 == first.1 || isSameFile($0.1, first.1) }) {
            throw ValidationError("--\(first.0) and --\(second.0) name the same file \(first.1); give each its own")
        }
    }
}
