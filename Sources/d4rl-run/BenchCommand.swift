import ArgumentParser
import Foundation
import RLData
import SeededRandom

/// `d4rl-run bench`: the benchmarks whose figures the README reports.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print its figures (build with -c release).",
        subcommands: [
            DataBenchmark.self, ModelBenchmark.self, TrainingBenchmark.self, EnvironmentBenchmark.self,
            PolicyBenchmark.self, ContextBenchmark.self, ScaleBenchmark.self,
        ]
    )
}

/// Loading and indexing a large D4RL file: time and peak memory.
struct DataBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Time loading a hopper-shaped D4RL file and measure peak memory.",
        discussion: """
            Writes a hopper-shaped file (observations 11, actions 3, qpos 6, qvel 6, with \
            next_observations) of --steps steps with TrajectoryWriter, unless --file names one. \
            Then, in a fresh process each so that nothing else sits in memory, it (1) reads the \
            observation, action, reward and flag arrays with bare H5Dread calls into Float \
            buffers, and (2) loads the file with D4RLDataset (schema checks, NaN scan, \
            trajectory split, state statistics and returns-to-go). It reports the median of \
            --repeats runs of each, their ratio, and peak RSS against the size of the loaded \
            float32 arrays. With --minari-episodes N it writes a Minari dataset of N one-step \
            episodes with MinariDatasetWriter instead: the case heavy in objects, not bytes, \
            since every episode is a group of five arrays. The bare read then opens and reads \
            each episode's arrays in turn, and the file check (FileProbe, the child process \
            every command runs first) is timed too.
            """
    )

    @Option(parsing: .unconditional, help: "Steps in the generated file.")
    var steps = 1_000_000

    @Option(parsing: .unconditional, help: "Write a Minari dataset of this many one-step episodes instead.")
    var minariEpisodes: Int?

    @Option(help: "Use this file (or Minari dataset) instead of generating one.")
    var file: String?

    @Option(parsing: .unconditional, help: "Timed runs of each measurement; the median is reported.")
    var repeats = 3

    @Option(help: .hidden)
    var child: String?

    func validate() throws {
        try requireFlag("steps", steps, in: 1...100_000_000)
        try requireFlag("repeats", repeats, in: 1...100)
        if let minariEpisodes {
            try requireFlag("minari-episodes", minariEpisodes, in: 1...1_000_000)
            if file != nil {
                throw ValidationError("Give --file or --minari-episodes, not both: --minari-episodes writes the dataset it measures.")
            }
        }
    }

    func run() throws {
        if let child {
            exitWhenOrphaned()
            try measureInThisProcess(mode: child)
            return
        }
        let path: String
        var cleanup: String?
        if let file {
            try FileProbe.check([file])
            path = file
        } else if let minariEpisodes {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("bench-minari-\(minariEpisodes)").path
            cleanup = path
            try? FileManager.default.removeItem(atPath: path)
            let started = Date()
            try DataBenchmark.writeOneStepEpisodes(minariEpisodes, to: path)
            let size = (try FileManager.default.attributesOfItem(atPath: path + "/data/main_data.hdf5")[.size] as? Int) ?? 0
            print(
                "wrote \(path): \(minariEpisodes) one-step episodes, \(size / 1_000_000) MB, in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
            )
        } else {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("bench-hopper-\(steps).hdf5").path
            cleanup = path
            let started = Date()
            try DataBenchmark.writeHopperShaped(steps: steps, to: path)
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            print(
                "wrote \(path): \(steps) steps, \(size / 1_000_000) MB, in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
            )
        }
        defer { if let cleanup { try? FileManager.default.removeItem(atPath: cleanup) } }

        var results: [String: [Measurement]] = [:]
        var checks: [Double] = []
        for _ in 0..<repeats {
            for mode in ["raw", "dataset"] {
                results[mode, default: []].append(try spawn(mode: mode, file: path))
            }
            let clock = ContinuousClock()
            checks.append(try clock.measure { try FileProbe.check([path]) } / .seconds(1))
        }
        let raw = median(results["raw"] ?? [])
        let loaded = median(results["dataset"] ?? [])
        let check = checks.sorted()[checks.count / 2]
        let bytes = loaded.arrayBytes
        let fileFloatBytes = try DataBenchmark.floatArrayBytes(in: path)
        print(
            "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB"
        )
        print(String(format: "raw H5Dread of the arrays   %7.3f s   peak RSS %6.1f MB", raw.seconds, raw.peakMB))
        print(String(format: "D4RLDataset load + index    %7.3f s   peak RSS %6.1f MB", loaded.seconds, loaded.peakMB))
        print(String(format: "load / raw read             %7.2f×", loaded.seconds / max(raw.seconds, 1e-9)))
        print(
            String(
                format: "file check (FileProbe)      %7.3f s   (a child process; every command runs it first; allowed %d s)",
                check, FileProbe.allowedSeconds(for: path)))
        print(
            String(
                format: "process before loading      %7.1f MB RSS (Swift runtime, Foundation, libhdf5)", loaded.baseMB))
        print(
            String(
                format: "loaded arrays               %7.1f MB   peak RSS / arrays %.2f×   RSS growth / arrays %.2f×",
                Double(bytes) / 1e6, loaded.peakMB * 1e6 / Double(bytes),
                (loaded.peakMB - loaded.baseMB) * 1e6 / Double(bytes)))
        print(
            String(
                format: "all float32 arrays in file  %7.1f MB   peak RSS / file arrays %.2f×",
                Double(fileFloatBytes) / 1e6, loaded.peakMB * 1e6 / Double(fileFloatBytes)))
    }

    struct Measurement: Codable {
        var seconds: Double
        var peakMB: Double
        var baseMB: Double
        var arrayBytes: Int
    }

    private func median(_ values: [Measurement]) -> Measurement {
        let sorted = values.sorted { $0.seconds < $1.seconds }
        return sorted.isEmpty ? Measurement(seconds: 0, peakMB: 0, baseMB: 0, arrayBytes: 0) : sorted[sorted.count / 2]
    }

    private func spawn(mode: String, file: String) throws -> Measurement {
        // The child is this tool: it exits with one of its documented statuses, unless a
        // signal ended it (then the measurement itself failed: 70).
        let data = try childOutput(["bench", "data", "--file", file, "--child", mode]) { status, killed in
            ExitCode(killed ? 70 : status)
        }
        return try JSONDecoder().decode(Measurement.self, from: data)
    }

    private func measureInThisProcess(mode: String) throws {
        let base = peakResidentMB()
        let clock = ContinuousClock()
        var arrayBytes = 0
        let elapsed = try clock.measure {
            if mode == "raw", case .minari = try DatasetSource.resolve(file ?? "") {
                let handle = try HDF5File.open(try DatasetSource.resolve(file ?? "").hdf5Path)
                for group in try handle.memberNames(of: "") {
                    for key in ["observations", "actions", "rewards"] {
                        arrayBytes += try handle.dataset("\(group)/\(key)").readArray(as: Float.self).count * 4
                    }
                    for key in ["terminations", "truncations"] {
                        arrayBytes += try handle.dataset("\(group)/\(key)").readArray(as: UInt8.self).count
                    }
                }
            } else if mode == "raw" {
                let handle = try HDF5File.open(file ?? "")
                for key in ["observations", "actions", "rewards"] {
                    let dataset = try handle.dataset(key)
                    let values = try dataset.readArray(as: Float.self)
                    arrayBytes += values.count * 4
                }
                for key in ["terminals", "timeouts"] {
                    arrayBytes += try handle.dataset(key).readArray(as: UInt8.self).count
                }
            } else {
                let dataset = try D4RLDataset(file: file ?? "")
                let statistics = dataset.stateStatistics()
                let returnsToGo = dataset.returnsToGo()
                precondition(
                    statistics.mean.count == dataset.observationDimension && returnsToGo.count == dataset.count)
                arrayBytes =
                    (dataset.observations.count + dataset.actions.count + dataset.rewards.count) * 4
                    + dataset.terminals.count + dataset.timeouts.count
            }
        }
        let seconds = elapsed / .seconds(1)
        let result = Measurement(seconds: seconds, peakMB: peakResidentMB(), baseMB: base, arrayBytes: arrayBytes)
        print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }

    /// The size of every floating-point array in the file, counted as float32.
    static func floatArrayBytes(in path: String) throws -> Int {
        let source = try DatasetSource.resolve(path)
        let file = try HDF5File.open(source.hdf5Path)
        let paths: [String]
        if case .minari = source {
            // More objects than `entries()` lists; the arrays are each episode group's members.
            paths = try file.memberNames(of: "").flatMap { group in
                try file.memberNames(of: group).map { "\(group)/\($0)" }
            }
        } else {
            paths = try file.entries().filter { $0.kind == .dataset }.map(\.path)
        }
        var total = 0
        for path in paths where file.kind(of: path) == .dataset {
            let dataset = try file.dataset(path)
            if case .float = dataset.elementType { total += dataset.elementCount * 4 }
        }
        return total
    }

    /// Peak resident set size of this process so far, from getrusage (kilobytes on Linux).
    private func peakResidentMB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1000
    }

    /// A hopper-shaped Minari dataset of `count` one-step episodes, alternately terminated and
    /// truncated: the most objects for the fewest bytes.
    static func writeOneStepEpisodes(_ count: Int, to folder: String) throws {
        let writer = try MinariDatasetWriter(
            folder: folder,
            configuration: MinariDatasetWriter.Configuration(
                observationDimension: 11, actionDimension: 3, datasetID: "bench/one-step-episodes-v0",
                environmentID: "Hopper-v4"))
        var generator = RandomGenerator(seed: 7)
        for episode in 0..<count {
            let observation = (0..<11).map { _ in generator.nextFloat() }
            let action = (0..<3).map { _ in generator.nextFloat() * 2 - 1 }
            try writer.append(
                observation: observation, action: action, reward: generator.nextFloat(), terminal: episode % 2 == 0,
                timeout: episode % 2 == 1, nextObservation: observation.map { $0 * 0.99 })
        }
        try writer.finish()
    }

    /// A hopper-shaped dataset: smooth pseudo-random signals, episodes of 100-1000 steps that
    /// end in a terminal (falls) or at the 1000-step limit.
    static func writeHopperShaped(steps: Int, to path: String) throws {
        let writer = try TrajectoryWriter(
            path: path,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: 11, actionDimension: 3, qposDimension: 6, qvelDimension: 6))
        var generator = RandomGenerator(seed: 7)
        var episodeLength = 0
        var episodeTarget = 100 + Int(generator.next() % 900)
        var observation = (0..<11).map { _ in generator.nextFloat() }
        for step in 0..<steps {
            let action = (0..<3).map { _ in generator.nextFloat() * 2 - 1 }
            let next = observation.enumerated().map { index, value in value * 0.99 + action[index % 3] * 0.05 }
            episodeLength += 1
            let terminal = episodeLength == episodeTarget && episodeTarget < 1000
            let timeout = episodeLength == 1000 || (step == steps - 1 && !terminal)
            try writer.append(
                observation: observation, action: action, reward: 1 + next[5] - 1e-3 * action[0] * action[0],
                terminal: terminal, timeout: timeout, nextObservation: next,
                qpos: (0..<6).map { Double(observation[$0]) }, qvel: (0..<6).map { Double(observation[5 + $0]) })
            observation = next
            if terminal || timeout {
                episodeLength = 0
                episodeTarget = 100 + Int(generator.next() % 901)
                observation = (0..<11).map { _ in generator.nextFloat() }
            }
        }
        writer.setMetadata("behavior/env_id", .string("Hopper-v4"))
        writer.setMetadata("note", .string("synthetic hopper-shaped data written by d4rl-run bench data"))
        try writer.finish()
    }
}
