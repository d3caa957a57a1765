import ArgumentParser
import DecisionFlow
import DecisionFlowSupport
import Foundation

/// `d4rl-run bench context`: the cost of a training step and of a decision against the
/// context length, for flow and softmax attention.
struct ContextBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "context",
        abstract: "Training cost and peak memory against context length K, flow against softmax; policy latency at long K.",
        discussion: """
            Training: the dt-default model (C 128, 3 layers, 1 head; S 11, A 3; max episode \
            length 1000) at each K in --contexts with batch --timesteps / K, so every step holds \
            about the same number of tokens. Each (attention, K) runs in a fresh process, so its \
            peak RSS is its own: median ms per step (forward, backward, clipping, AdamW) over \
            --steps after --warmup, µs per token, and peak RSS. Flow's per-token cost and memory \
            stay flat in K (chunked Flow-Attention); softmax's grow with K. \
            Acting: DecisionPolicy with K = --policy-context, one thread, p50 of decisions \
            10–110 against decisions 900–1000 of one episode. \
            --chunks times flow at the longest K for each listed chunk length instead.
            """
    )

    @Option(help: "Context lengths K (comma-separated).")
    var contexts = "20,100,300,1000"

    @Option(parsing: .unconditional, help: "Timesteps per training step; the batch is this divided by K (at least 1).")
    var timesteps = 1000

    /// Per point: 10 timed steps after 2 warm-up steps.
    enum Timing: StepTimingDefaults { static let steps = 10, warmup = 2 }
    @OptionGroup var timing: StepTiming<Timing>

    @Option(help: "Attention kinds to compare (comma-separated).")
    var attention = "flow,softmax"

    @Option(parsing: .unconditional, help: "Context length of the policy-latency measurement (0 skips it).")
    var policyContext = 1000

    @Option(help: "Chunk lengths to compare for flow at the longest K (comma-separated); skips the rest.")
    var chunks: String?

    @Option(help: "Write a log-log plot of µs per token against K to this SVG file.")
    var svg: String?

    @Option(help: .hidden)
    var child: String?

    /// One measurement: attention kind, context length K, batch and chunk length, then its figures.
    struct Point: Codable {
        var attention: String
        var context, batch, chunk: Int
        var millisecondsPerStep, microsecondsPerToken, peakMB: Double
    }

    func validate() throws {
        try requireFlag("timesteps", timesteps, in: 1...10_000_000)
        try requireFlag("policy-context", policyContext, in: 0...1000)  // the episode limit
        _ = try parsedContexts()
        _ = try parsedKinds()
        _ = try parsedChunks()
    }

    func parsedContexts() throws -> [Int] { try Self.integers(contexts, flag: "--contexts", in: 1...1000) }

    /// A comma-separated list of whole numbers in `range`, or an error naming the flag.
    static func integers(_ text: String, flag: String, in range: ClosedRange<Int>) throws -> [Int] {
        let values = try listFlag(String(flag.dropFirst(2)), text).map { Int($0) }
        guard !values.isEmpty, values.allSatisfy({ $0.map(range.contains) ?? false }) else {
            throw ValidationError(
                "\(flag) '\(text)': give whole numbers in \(range.lowerBound)...\(range.upperBound), comma-separated")
        }
        return values.map { $0! }
    }

    func parsedKinds() throws -> [AttentionKind] {
        let kinds = attention.split(separator: ",").map { AttentionKind(rawValue: String($0)) }
        guard !kinds.isEmpty, kinds.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--attention '\(attention)': use flow, softmax or both, comma-separated")
        }
        return kinds.map { $0! }
    }

    func parsedChunks() throws -> [Int]? {
        try chunks.map { try Self.integers($0, flag: "--chunks", in: 1...4096) }
    }

    func run() throws {
        if let child {
            exitWhenOrphaned()
            try measureInThisProcess(child)
            return
        }
        let contexts = try parsedContexts()
        print(
            "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB; dt-default (C 128, 3 layers, 1 head), \(timing.threads) threads, ~\(timesteps) timesteps per step"
        )
        if let chunks = try parsedChunks() {
            let K = contexts.max()!
            print("flow at K \(K), batch \(max(1, timesteps / K)):")
            print("chunk   ms/step   µs/token   peak RSS MB")
            for chunk in chunks {
                let point = try spawn(kind: .flow, context: K, chunk: chunk)
                print(
                    String(
                        format: "%5d   %7.1f   %8.2f   %11.0f", chunk, point.millisecondsPerStep,
                        point.microsecondsPerToken, point.peakMB))
            }
            return
        }
        var points: [Point] = []
        print("attention      K   batch   ms/step   µs/token   peak RSS MB   µs/token ÷ K \(contexts[0])")
        for kind in try parsedKinds() {
            var first: Double?
            for K in contexts {
                let point = try spawn(kind: kind, context: K, chunk: 0)  // 0: the model's default
                points.append(point)
                first = first ?? point.microsecondsPerToken
                print(
                    kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                        + String(
                            format: " %5d   %5d   %7.1f   %8.2f   %11.0f   %6.2f×", K, point.batch,
                            point.millisecondsPerStep, point.microsecondsPerToken, point.peakMB,
                            point.microsecondsPerToken / first!))
            }
        }
        for K in contexts {
            if let flow = points.first(where: { $0.attention == "flow" && $0.context == K }),
                let softmax = points.first(where: { $0.attention == "softmax" && $0.context == K })
            {
                print(
                    String(
                        format: "K %4d: flow is %.2f× faster than softmax per token; peak RSS %.2f× of softmax's", K,
                        softmax.microsecondsPerToken / flow.microsecondsPerToken, flow.peakMB / softmax.peakMB))
            }
        }
        if let svg {
            try AtomicFile.write(Data(ContextPlot(points: points).svg().utf8), to: svg)
            print("wrote \(svg)")
        }
        if policyContext > 0 { try measurePolicyLatency() }
    }

    /// Runs one training measurement in a fresh process.
    private func spawn(kind: AttentionKind, context: Int, chunk: Int) throws -> Point {
        let arguments = [
            "bench", "context", "--child", "\(kind.rawValue):\(context):\(chunk)", "--timesteps", "\(timesteps)",
            "--steps", "\(timing.steps)", "--warmup", "\(timing.warmup)", "--threads", "\(timing.threads)",
        ]
        let data = try childOutput(arguments) { status, _ in
            ValidationError("the measurement of \(kind.rawValue) at K \(context) failed (exit \(status))")
        }
        return try JSONDecoder().decode(Point.self, from: data)
    }

    private func measureInThisProcess(_ spec: String) throws {
        let parts = spec.split(separator: ":")
        guard parts.count == 3, let kind = AttentionKind(rawValue: String(parts[0])), let K = Int(parts[1]),
            let chunk = Int(parts[2])
        else { throw ValidationError("bad --child '\(spec)'") }
        let batch = max(1, timesteps / K)
        let configuration = ModelConfiguration(
            stateDimension: 11, actionDimension: 3, contextLength: K, maxEpisodeLength: 1000, attention: kind)
        let milliseconds = ModelBenchmark.timeTraining(
            configuration, batch: batch, steps: timing.steps, warmup: timing.warmup, threads: timing.threads,
            flowChunkLength: chunk > 0 ? chunk : nil
        ).0
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let point = Point(
            attention: kind.rawValue, context: K, batch: batch,
            chunk: chunk > 0 ? chunk : FlowChunking.defaultLength(tokens: 3 * K), millisecondsPerStep: milliseconds,
            microsecondsPerToken: milliseconds * 1000 / Double(3 * K * batch), peakMB: Double(usage.ru_maxrss) / 1000)
        print(String(decoding: try JSONEncoder().encode(point), as: UTF8.self))
    }

    /// p50 decision latency early and late in one episode with a window that never slides.
    private func measurePolicyLatency() throws {
        let K = policyContext
        print("DecisionPolicy, K \(K), one thread, one episode of \(K) decisions:")
        print("attention   decisions 10–110 p50   decisions \(max(0, K - 100))–\(K) p50   ratio")
        for kind in try parsedKinds() {
            let configuration = ModelConfiguration(
                stateDimension: 11, actionDimension: 3, contextLength: K, maxEpisodeLength: 1000, attention: kind)
            let times = try PolicyBenchmark.timeDecisions(configuration, count: K)
            func median(_ range: Range<Int>) -> Double {
                let slice = times[range.clamped(to: 0..<times.count)].sorted()
                return slice.isEmpty ? .nan : slice[slice.count / 2]
            }
            let early = median(10..<110)
            let late = median(max(0, K - 100)..<K)
            print(
                kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "  %17.3f ms   %18.3f ms   %5.2f×", early, late, late / early))
        }
    }
}

/// A log-log plot of training cost per token against context length.
struct ContextPlot {
    var points: [ContextBenchmark.Point]

    func svg() -> String {
        let (width, height) = (640.0, 420.0)
        let (left, top, plotWidth, plotHeight) = (80.0, 40.0, 520.0, 300.0)
        let usable = points.filter { $0.microsecondsPerToken > 0 }
        let xs = usable.map { log10(Double($0.context)) }
        let ys = usable.map { log10($0.microsecondsPerToken) }
        let (xLow, xHigh) = ((xs.min() ?? 0) - 0.05, (xs.max() ?? 1) + 0.05)
        let (yLow, yHigh) = (floor((ys.min() ?? 0) * 2) / 2, ceil((ys.max() ?? 1) * 2) / 2 + 0.001)
        func px(_ x: Double) -> Double { left + (x - xLow) / (xHigh - xLow) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y - yLow) / (yHigh - yLow) * plotHeight }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="22" text-anchor="middle" font-size="15">Training cost per token against context length (log-log)</text>
            <rect x="\(left)" y="\(top)" width="\(plotWidth)" height="\(plotHeight)" fill="none" stroke="#888"/>

            """
        for K in Set(usable.map(\.context)).sorted() {
            let x = px(log10(Double(K)))
            out += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(top + plotHeight)\" stroke=\"#eee\"/>"
            out += "<text x=\"\(x)\" y=\"\(top + plotHeight + 16)\" text-anchor=\"middle\">\(K)</text>\n"
        }
        var level = yLow
        while level <= yHigh {
            let y = py(level)
            out += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + plotWidth)\" y2=\"\(y)\" stroke=\"#eee\"/>"
            out +=
                "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(String(format: "%.3g", pow(10, level)))</text>\n"
            level += 0.5
        }
        out += "<text x=\"\(left + plotWidth / 2)\" y=\"\(top + plotHeight + 36)\" text-anchor=\"middle\">context length K (timesteps; 3K tokens)</text>\n"
        out +=
            "<text x=\"20\" y=\"\(top + plotHeight / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 20 \(top + plotHeight / 2))\">µs per token (forward + backward + AdamW)</text>\n"
        for (index, kind) in ["flow", "softmax"].enumerated() {
            let series = usable.filter { $0.attention == kind }.sorted { $0.context < $1.context }
            guard !series.isEmpty else { continue }
            let color = index == 0 ? "#1f77b4" : "#d62728"
            let path = series.map {
                String(format: "%.1f,%.1f", px(log10(Double($0.context))), py(log10($0.microsecondsPerToken)))
            }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            for point in series {
                out += String(
                    format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%@\"/>\n", px(log10(Double(point.context))),
                    py(log10(point.microsecondsPerToken)), color)
            }
            let y = top + plotHeight + 56  // the legend: one row, side by side
            let x = left + Double(index) * 260
            out += "<line x1=\"\(x)\" y1=\"\(y)\" x2=\"\(x + 30)\" y2=\"\(y)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            out +=
                "<text x=\"\(x + 38)\" y=\"\(y + 4)\">\(kind == "flow" ? "causal Flow-Attention (chunked)" : "softmax attention (GPT-2)")</text>\n"
        }
        return out + "</svg>\n"
    }
}
