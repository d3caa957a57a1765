import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowSupport
import Foundation

/// `d4rl-run act`: a policy that acts for a simulator in another process, over standard input
/// and output.
struct ActCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "act",
        abstract: "Act for a simulator in another process: observations in on standard input, actions out.",
        discussion: """
            Reads one request per line and answers each with one line, so a client in any \
            language (scripts/cross-evaluate.py drives gymnasium with it) steps in lock-step:
              reset TARGET      start an episode aiming for return TARGET (environment scale); answers `ok`
              act X1 ... XS     the observation (S numbers); answers the action (A numbers)
              reward R          the reward of the last action (environment scale); answers `ok`
            Numbers are decimal; answers print each float so that it reads back exactly. A \
            request that cannot be carried out (a wrong count, a non-number, NaN, acting \
            before `reset`, a reward with no action before it) is answered `error: ...`, \
            changes nothing, and the session goes on. \
            The policy is the one `evaluate` runs, for one agent.
            """
    )

    @Option(
        help: "A checkpoint written by `d4rl-run train` or `d4rl-run import`.",
        completion: .file(extensions: ["safetensors"]))
    var checkpoint: String

    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        let policy = try DecisionPolicy(checkpointPath: checkpoint, threads: threadOptions.count())
        var session = ActingSession(policy: policy)
        // A client that hangs up ends the session (EPIPE below), instead of a signal.
        signal(SIGPIPE, SIG_IGN)
        while let line = readLine(strippingNewline: true) {
            print(session.answer(line))
            // Flushed now: the client waits for each answer before it sends the next request.
            errno = 0
            if fflush(nil) != 0 {
                if errno == EPIPE { return }
                throw FileWriteError(
                    file: "standard output", problem: "cannot be written (\(String(cString: strerror(errno)))); the session ends",
                    code: errno)
            }
        }
    }
}

/// The requests of `d4rl-run act`, answered one by one.
struct ActingSession {
    let policy: DecisionPolicy
    private var observation: [Float]
    private var action: [Float]
    /// Whether an action was given whose reward has not come yet.
    private var awaitingReward = false
    /// Whether an episode was started.
    private var started = false
    /// Requests longer than this are refused unread (an observation of a few thousand
    /// numbers fits many times over).
    static let lineLimit = 1 << 20

    init(policy: DecisionPolicy) {
        self.policy = policy
        observation = [Float](repeating: 0, count: policy.observationDimension)
        action = [Float](repeating: 0, count: policy.actionDimension)
    }

    /// The answer to one request line.
    mutating func answer(_ line: String) -> String {
        guard line.utf8.count <= Self.lineLimit else {
            return "error: a request of \(line.utf8.count) bytes; requests are at most \(Self.lineLimit) bytes"
        }
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard let command = words.first else { return "error: an empty line; send reset, act or reward" }
        let arguments = words.dropFirst()
        switch command {
        case "reset", "reward":
            // Finite as a Float too: 1e39 is a finite Double but not a Float.
            guard arguments.count == 1, let value = Self.number(arguments.first!), value.isFinite else {
                return "error: \(command) takes one finite decimal number within Float's range (got '\(Self.excerpt(arguments.joined(separator: " ")))')"
            }
            if command == "reset" {
                policy.reset(targetReturn: value)
                started = true
            } else {
                guard awaitingReward else { return "error: no action awaits a reward; send act first" }
                policy.record(reward: value)
            }
            awaitingReward = false
            return "ok"
        case "act":
            guard arguments.count == observation.count else {
                return "error: act takes \(observation.count) numbers, the observation; got \(arguments.count)"
            }
            guard started else { return "error: no episode has started; send reset TARGET first" }
            for (index, word) in arguments.enumerated() {
                guard let value = Self.number(word) else {
                    return "error: observation value \(index) ('\(Self.excerpt(String(word)))') is not a decimal number"
                }
                observation[index] = value
            }
            do {
                action = try policy.action(for: observation)
            } catch {
                return "error: \(error)"
            }
            awaitingReward = true
            return action.map { "\($0)" }.joined(separator: " ")
        default:
            return "error: unknown request '\(Self.excerpt(String(command)))'; send reset, act or reward"
        }
    }

    /// A decimal number (digits, sign, point, exponent), or nil: no hexadecimal, and no
    /// bytes after a NUL that Float's parser would stop at.
    static func number(_ word: Substring) -> Float? {
        guard word.unicodeScalars.allSatisfy({ "0123456789+-.eE".unicodeScalars.contains($0) }) else { return nil }
        return Float(word)
    }

    /// At most 40 characters of what the client sent, for an error line.
    static func excerpt(_ text: String) -> String { text.count <= 40 ? text : String(text.prefix(40)) + "…" }
}
