import ArgumentParser

/// `--threads`, for every command that runs the model.
struct ThreadOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Worker threads (default 2; train: the preset's). Results repeat exactly for a given seed and thread count.",
            valueName: "n"))
    var threads: Int?

    /// The count asked for, or `fallback`.
    func count(default fallback: Int = 2) -> Int { threads ?? fallback }

    func validate() throws {
        if let threads, !(1...1024).contains(threads) {
            throw ValidationError("--threads must be from 1 to 1024 (it is \(threads))")
        }
    }
}

/// `--seed`, for every command that draws random numbers or resets environments.
struct SeedOptions: ParsableArguments {
    @Option(
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
