import Foundation

/// A one-line progress display on stderr: redrawn in place on a terminal, a plain line every
/// 10% otherwise (logs and CI).
final class ProgressLine {
    let total: Int
    let startStep: Int
    let interactive = isatty(STDERR_FILENO) != 0
    private var lastDraw = -1.0
    private var lastDecile = -1

    init(total: Int, startStep: Int) {
        self.total = total
        self.startStep = startStep
    }

    func update(step: Int, loss: Float, elapsed: Double, label: String = "step", valueLabel: String = "loss") {
        let done = step - startStep
        let value = valueLabel == "loss" ? String(format: "loss %.4f", loss) : "\(valueLabel) \(Int(loss))"
        // Within the first 50 ms a rate is noise (a first step after 0.4 µs reads as
        // millions of steps/s): show none until there is time to measure.
        let measured = elapsed >= 0.05 && done > 0
        let rate = Double(done) / max(elapsed, 1e-9)
        let speed = measured ? String(format: "%.1f steps/s", rate) : "- steps/s"
        let eta = measured ? Self.clock(Double(total - step) / max(rate, 1e-9)) : "-"
        let line = "\(label) \(step)/\(total)  \(value)  \(speed)  ETA \(eta)"
        if interactive {
            guard elapsed - lastDraw >= 0.1 || step == total else { return }
            lastDraw = elapsed
            standardError("\r\u{1B}[K\(line)")
        } else {
            let decile = step * 10 / max(total, 1)
            guard decile != lastDecile else { return }
            lastDecile = decile
            standardError("\(line)\n")
        }
    }

    func finish() {
        if interactive { standardError("\n") }
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(seconds.rounded())
        return total >= 3600
            ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
            : String(format: "%d:%02d", total / 60, total % 60)
    }
}
