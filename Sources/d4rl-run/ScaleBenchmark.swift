import ArgumentParser
import DecisionFlow
import Foundation

/// `d4rl-run bench scale`: data parallelism on this machine, measured, then projected to
/// clusters from the measured compute and a stated network.
struct ScaleBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Compare 2 ranks × 1 thread with 1 process × 2 threads, and project to 8 and 64 nodes.",
        discussion: """
            Part 1 trains dt-default (C 128, 3 layers, batch 64, K 20) on the bundled dataset \
            as one process with 2 threads and as `mpirun -np 2` with 1 thread each, alternating \
            in one run, and reports steps per second and the all-reduce's time and bytes per \
            step. Part 2 projects strong scaling (the global batch of 64 split over N nodes of \
            this machine's kind): a node's compute is measured here at its share of the batch, \
            and the gradient all-reduce is a ring over a network of the stated bandwidth with \
            5 µs per message: 2(N − 1)/N · bytes / bandwidth + 2(N − 1) · 5 µs. Efficiency is \
            the one-node step time over N times the N-node step time.
            """)

    @Option(parsing: .unconditional, help: "Training steps per measurement (after a warmup of the first 5).")
    var steps = 40

    @Option(parsing: .unconditional, help: "Measurements of each setup, alternated.")
    var rounds = 2

    func validate() throws {
        try requireFlag("steps", steps, in: 10...100_000)
        try requireFlag("rounds", rounds, in: 1...20)
    }

    struct Measurement {
        var stepsPerSecond: Double
        var allreduceMilliseconds: Double?
        var bytes: Int?
    }

    func run() throws {
        let binary = thisExecutable.path
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bench-scale-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let dataset = "data/hopper-medium-replay-tail25k.hdf5"
        guard FileManager.default.fileExists(atPath: dataset) else {
            throw ValidationError("run from the repository root: \(dataset) is needed")
        }
        func train(processes: Int, threads: Int, round: Int) throws -> Measurement {
            let out = scratch.appendingPathComponent("p\(processes)-r\(round)").path
            let arguments =
                ["train", "--dataset", dataset, "--steps", String(steps), "--log-every", String(steps),
                 "--checkpoint-every", String(steps), "--threads", String(threads), "--out", out]
            let process = Process()
            if processes == 1 {
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments = arguments
            } else {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
                process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", String(processes), binary] + arguments
            }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw ValidationError("training with \(processes) process(es) failed (status \(process.terminationStatus)); is Open MPI installed?")
            }
            // Steps per second over the logged training time (startup excluded).
            let log = try String(contentsOfFile: out + "/log.jsonl", encoding: .utf8)
            let last = log.split(separator: "\n").last.flatMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let seconds = last?["elapsed_seconds"] as? Double ?? .nan
            var measurement = Measurement(stepsPerSecond: Double(steps) / seconds)
            if let line = output.split(separator: "\n").first(where: { $0.contains("allreduce") }) {
                let numbers = line.split(whereSeparator: { " ,()".contains($0) }).compactMap { Double($0) }
                if numbers.count >= 2 {
                    measurement.allreduceMilliseconds = numbers[0]
                    measurement.bytes = Int(numbers[1])
                }
            }
            return measurement
        }

        print("Part 1: dt-default on this machine (\(ProcessInfo.processInfo.activeProcessorCount) cores), \(steps) steps each, \(rounds) round(s) alternated")
        var single: [Measurement] = []
        var parallel: [Measurement] = []
        for round in 0..<rounds {
            single.append(try train(processes: 1, threads: 2, round: round))
            parallel.append(try train(processes: 2, threads: 1, round: round))
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let singleRate = median(single.map(\.stepsPerSecond))
        let parallelRate = median(parallel.map(\.stepsPerSecond))
        let allreduce = median(parallel.compactMap(\.allreduceMilliseconds))
        let bytes = parallel.compactMap(\.bytes).first ?? 0
        print("  setup                    steps/s   allreduce ms/step   bytes/step   share of step")
        print(String(format: "  1 process × 2 threads   %8.2f", singleRate))
        print(
            String(
                format: "  2 ranks × 1 thread      %8.2f   %17.3f   %10d   %12.1f%%", parallelRate, allreduce, bytes,
                100 * allreduce / (1000 / parallelRate)))
        print(String(format: "  ratio (2 ranks ÷ 1 process): %.2f×", parallelRate / singleRate))

        print("\nPart 2: projected to N nodes like this one (2 threads each), ring all-reduce at 10 and 100 Gbit/s")
        print("  strong: the global batch of 64 split over the nodes (what one process would train);")
        print("  weak: 64 windows per node (--batch-size 64·N), each node's compute as one node's.")
        print("  config      nodes  node compute ms   params   ring ms 10G / 100G   strong eff. 10G / 100G   weak eff. 10G / 100G")
        for name in ["dt-default", "paper"] {
            guard let configuration = ModelBenchmark.named(name) else { continue }
            let (oneNode, _) = ModelBenchmark.timeTraining(configuration, batch: 64, steps: 9, warmup: 2, threads: 2)
            let parameters = ParameterLayout(configuration: configuration).count
            let payload = Double((parameters + 2) * 4)
            for nodes in [8, 64] {
                let (compute, _) = ModelBenchmark.timeTraining(
                    configuration, batch: max(64 / nodes, 1), steps: 15, warmup: 3, threads: 2)
                let rings = [10.0, 100.0].map { gigabits in
                    1000 * (2 * Double(nodes - 1) / Double(nodes) * payload / (gigabits * 1e9 / 8)
                        + 2 * Double(nodes - 1) * 5e-6)
                }
                let strong = rings.map { 100 * oneNode / (Double(nodes) * (compute + $0)) }
                let weak = rings.map { 100 * oneNode / (oneNode + $0) }
                print(
                    String(
                        format: "  %-10@ %6d  %15.1f  %8d   %8.2f / %6.2f   %11.0f%% / %4.0f%%   %9.1f%% / %5.1f%%",
                        name as NSString, nodes, compute, parameters, rings[0], rings[1], strong[0], strong[1], weak[0],
                        weak[1]))
            }
            print(String(format: "  %-11@ one node at batch 64: %.2f ms/step", name as NSString, oneNode))
        }
    }
}
