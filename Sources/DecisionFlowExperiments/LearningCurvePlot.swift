import DecisionFlowTraining
import Foundation

/// Draws learning curves of one or more runs as an SVG image: training loss (log scale)
/// against step, and, when any run logged evaluations, the D4RL normalized score.
public struct LearningCurvePlot {
    /// One run's curve.
    public struct Series {
        /// The legend entry (usually the run directory's name).
        public var name: String
        /// The run's log lines, in step order.
        public var lines: [LogLine]

        /// Creates a series; see the properties for the meaning of each value.
        public init(name: String, lines: [LogLine]) {
            self.name = name
            self.lines = lines
        }
    }

    /// The runs to overlay.
    public var series: [Series]
    /// The title above the plots.
    public var title: String

    /// Creates a plot; see the properties for the meaning of each value.
    public init(series: [Series], title: String = "Learning curves") {
        self.series = series
        self.title = title
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// The SVG document.
    public func svg() -> String {
        let scored = series.contains { $0.lines.contains { $0.normalizedScore != nil } }
        let panelWidth = 560.0
        let panelHeight = 300.0
        let width = scored ? 2 * panelWidth + 60 : panelWidth + 40
        let legendHeight = Double(series.count) * 18 + 10
        let height = panelHeight + 90 + legendHeight
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(width / 2))" y="22" text-anchor="middle" font-size="16">\(escape(title))</text>

            """
        out += panel(
            x: 20, y: 40, width: panelWidth, height: panelHeight, label: "training loss (log scale)", logScale: true
        ) { $0.loss }
        if scored {
            out += panel(
                x: panelWidth + 40, y: 40, width: panelWidth, height: panelHeight, label: "D4RL normalized score",
                logScale: false
            ) { $0.normalizedScore }
        }
        for (index, run) in series.enumerated() {
            let y = panelHeight + 80 + Double(index) * 18
            let color = Self.palette[index % Self.palette.count]
            out += "<line x1=\"30\" y1=\"\(y)\" x2=\"60\" y2=\"\(y)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            out += "<text x=\"68\" y=\"\(y + 4)\">\(escape(run.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    private func panel(
        x: Double, y: Double, width: Double, height: Double, label: String, logScale: Bool,
        value: (LogLine) -> Double?
    ) -> String {
        let left = x + 60
        let top = y + 10
        let plotWidth = width - 70
        let plotHeight = height - 50
        let points = series.map { run in run.lines.compactMap { line in value(line).map { (Double(line.step), $0) } } }
        let all = points.flatMap { $0 }.filter { $0.1.isFinite && (!logScale || $0.1 > 0) }
        var out =
            "<g>\n<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(plotHeight)\" fill=\"none\" stroke=\"#888\"/>\n"
        out += "<text x=\"\(left + plotWidth / 2)\" y=\"\(top + plotHeight + 36)\" text-anchor=\"middle\">step</text>\n"
        out +=
            "<text x=\"\(x + 12)\" y=\"\(top + plotHeight / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 \(x + 12) \(top + plotHeight / 2))\">\(escape(label))</text>\n"
        guard let minStep = all.map(\.0).min(), let maxStep = all.map(\.0).max(),
            let minValue = all.map(\.1).min(), let maxValue = all.map(\.1).max()
        else {
            return out
                + "<text x=\"\(left + plotWidth / 2)\" y=\"\(top + plotHeight / 2)\" text-anchor=\"middle\">no data</text>\n</g>\n"
        }
        let transform: (Double) -> Double = logScale ? { Foundation.log10($0) } : { $0 }
        var low = transform(minValue)
        var high = transform(maxValue)
        if high - low < 1e-9 {
            low -= 0.5
            high += 0.5
        }
        let stepSpan = max(maxStep - minStep, 1)
        func px(_ step: Double) -> Double { left + (step - minStep) / stepSpan * plotWidth }
        func py(_ value: Double) -> Double { top + plotHeight - (transform(value) - low) / (high - low) * plotHeight }
        // Axis ticks: five along each axis.
        for tick in 0...4 {
            let fraction = Double(tick) / 4
            let step = minStep + fraction * stepSpan
            out +=
                "<text x=\"\(px(step))\" y=\"\(top + plotHeight + 16)\" text-anchor=\"middle\">\(String(format: "%.0f", step))</text>\n"
            let level = low + fraction * (high - low)
            let shown = logScale ? Foundation.pow(10, level) : level
            let yTick = top + plotHeight - fraction * plotHeight
            out += "<line x1=\"\(left)\" y1=\"\(yTick)\" x2=\"\(left + plotWidth)\" y2=\"\(yTick)\" stroke=\"#eee\"/>"
            out +=
                "<text x=\"\(left - 6)\" y=\"\(yTick + 4)\" text-anchor=\"end\">\(String(format: "%.3g", shown))</text>\n"
        }
        for (index, curve) in points.enumerated() {
            let usable = curve.filter { $0.1.isFinite && (!logScale || $0.1 > 0) }
            guard !usable.isEmpty else { continue }
            let color = Self.palette[index % Self.palette.count]
            let path = usable.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            if usable.count == 1 {
                out += String(
                    format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", px(usable[0].0), py(usable[0].1),
                    color)
            }
        }
        return out + "</g>\n"
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
