import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
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
        while let line = readLine(strippingNewline: true) {
            // Unbuffered: the client waits for each answer before it sends the next request.
            FileHandle.standardOutput.write(Data((session.answer(line) + "\n").utf8))
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

    init(policy: DecisionPolicy) {
        self.policy = policy
        observation = [Float](repeating: 0, count: policy.observationDimension)
        action = [Float](repeating: 0, count: policy.actionDimension)
    }

    /// The answer to one request line.
    mutating func answer(_ line: String) -> String {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard let command = words.first else { return "error: an empty line; send reset, act or reward" }
        let arguments = words.dropFirst()
        switch command {
        case "reset", "reward":
            // Finite as a Float too: 1e39 is a finite Double but not a Float.
            guard arguments.count == 1, let value = Float(arguments.first!), value.isFinite else {
                return "error: \(command) takes one finite number within Float's range (got '\(arguments.joined(separator: " "))')"
            }
            if command == "reset" {
                policy.reset(targetReturn: value)
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
            for (index, word) in arguments.enumerated() {
                guard let value = Float(word) else { return "error: observation value \(index) ('\(word)') is not a number" }
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
            return "error: unknown request '\(command)'; send reset, act or reward"
        }
    }
}
