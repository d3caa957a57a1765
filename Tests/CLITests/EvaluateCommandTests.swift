import Foundation
import Testing

/// The shared run of `EvaluateCommandTests`, for the exit handler that removes it.
nonisolated(unsafe) private var sharedRunDirectory: String?

/// `d4rl-run evaluate`, periodic evaluation, and the embedding example, run as a user would.
@Suite struct EvaluateCommandTests {
    /// A tiny run, trained just enough to have a checkpoint with normalization: trained once,
    /// shared by the tests below. A failure fails each test that needs it, with the tool's
    /// message, instead of stopping the whole test process.
    static let trained = Result { () throws -> String in
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-eval-\(UUID().uuidString)")
            .path
        // Removed when the test process exits: no test owns it, so no test can remove it.
        sharedRunDirectory = directory
        atexit { if let directory = sharedRunDirectory { try? FileManager.default.removeItem(atPath: directory) } }
        let result = try CLI.run(
            ["train"] + TrainCommandTests.tiny + [
                "--steps", "4", "--out", directory, "--evaluate-every", "4", "--evaluation-episodes", "2",
            ])
        // A plain error, which every test that needs the run records (an expectation's own
        // error would be recorded by the first of them only).
        struct FixtureFailed: Error, CustomStringConvertible { var description: String }
        guard result.status == 0 else { throw FixtureFailed(description: "training the fixture run failed: \(result.error)") }
        return directory
    }

    /// The directory of the shared run.
    static var run: String { get throws { try trained.get() } }

    @Test func periodicEvaluationIsLoggedAndSummarized() throws {
        let log = try String(contentsOfFile: try Self.run + "/log.jsonl", encoding: .utf8)
        #expect(log.contains("\"normalized_score\""))
    }

    @Test func evaluateReportsEveryTarget() throws {
        let result = try CLI.run([
            "evaluate", "--checkpoint", try Self.run + "/checkpoint.safetensors", "--episodes", "3", "--targets",
            "3600,1800", "--json",
        ])
        #expect(result.status == 0, "\(result.error)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
        #expect(reports.count == 2)
        #expect(reports.map { $0["target"] as? Double } == [3600, 1800])
        for report in reports {
            #expect((report["episodes"] as? [Any])?.count == 3)
            #expect(report["normalizedMean"] is Double && report["returnStd"] is Double)
        }
        let text = try CLI.run(["evaluate", "--checkpoint", try Self.run + "/checkpoint.safetensors", "--episodes", "2"])
        #expect(text.output.contains("target    3600") && text.output.contains("normalized"), "\(text.output)")
    }

    /// `act` answers every request line with one line; bad requests get an error and change
    /// nothing, so the same observation after the same reset gets the same action.
    @Test func actAnswersEachRequestAndRefusesBadOnes() throws {
        let checkpoint = try Self.run + "/checkpoint.safetensors"
        let observation = "act " + (1...11).map { "0.\($0)" }.joined(separator: " ")
        let requests = [
            observation, "reward 1", "reset 3600", observation, "reward 2", "reward 3", "act 1 2",
            "act 1 2 3 4 5 6 7 8 9 10 1e39", "act 1 2 3 4 5 6 7 8 9 10 x", "fly", "", "reset inf", "reset 3600",
            observation, "reward 1e39", "reset 1e39", "reward 1", "act 1 2 3 4 5 6 7 8 9 10 1\u{0}9",
            "act 1 2 3 4 5 6 7 8 9 10 0x10",
        ]
        let result = try CLI.run(["act", "--checkpoint", checkpoint], input: requests.joined(separator: "\n") + "\n")
        #expect(result.status == 0, "\(result.error)")
        let answers = result.output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(answers.count == requests.count, "\(answers)")
        guard answers.count == requests.count else { return }
        #expect(answers[0].hasPrefix("error: ") && answers[0].contains("reset"), "acting before reset: \(answers[0])")
        #expect(answers[1] == "error: no action awaits a reward; send act first")
        #expect(answers[2] == "ok" && answers[4] == "ok")
        let action = answers[3].split(separator: " ").compactMap { Float($0) }
        #expect(action.count == 3 && action.allSatisfy { abs($0) <= 1 }, "\(answers[3])")
        #expect(answers[5].contains("no action awaits a reward"))
        #expect(answers[6] == "error: act takes 11 numbers, the observation; got 2")
        #expect(answers[7].contains("NaN or infinite") && answers[8].contains("'x') is not a decimal number"))
        #expect(answers[9].contains("unknown request 'fly'") && answers[10].contains("empty line"))
        #expect(answers[11].contains("reset takes one finite decimal number"))
        #expect(answers[13] == answers[3], "the same observation after the same reset")
        // Finite as a Double, not as a Float: refused, and the session goes on.
        #expect(answers[14].contains("within Float's range") && answers[15].contains("within Float's range"))
        #expect(answers[16] == "ok", "the refused reward left the action awaiting its reward")
        // Only decimal numbers: nothing after a NUL is dropped, no hexadecimal.
        #expect(answers[17].contains("is not a decimal number") && answers[18].contains("'0x10') is not a decimal number"))
    }

    @Test func environmentsListsTheCatalog() throws {
        let text = try CLI.run(["environments"])
        #expect(text.status == 0)
        #expect(text.output.contains("walker2d-v5") && text.output.contains("Walker2d-v5") && text.output.contains("Hopper-v3"))
        let json = try CLI.run(["environments", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])
        let ant = try #require(rows.first { $0["name"] as? String == "ant-v5" })
        #expect(ant["observationWidth"] as? Int == 105 && ant["id"] as? String == "Ant-v5")
    }

    @Test func badInputsAreClearErrors() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = try Self.run + "/checkpoint.safetensors"

        let wrongEnvironment = try CLI.run([
            "evaluate", "--checkpoint", checkpoint, "--env", "walker2d", "--episodes", "1",
        ])
        #expect(wrongEnvironment.status == 65)
        #expect(
            wrongEnvironment.error.contains("walker2d (Walker2d-v4) has observations of 17 and actions of 6, but the model in"),
            "\(wrongEnvironment.error)")

        let unknown = try CLI.run(["evaluate", "--checkpoint", checkpoint, "--env", "pong", "--episodes", "1"])
        #expect(unknown.status == 64)
        #expect(unknown.error.contains("no environment named 'pong'"), "\(unknown.error)")

        var data = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        data[data.count - 100] ^= 0xFF
        let corrupt = directory.appendingPathComponent("corrupt.safetensors").path
        try data.write(to: URL(fileURLWithPath: corrupt))
        let corrupted = try CLI.run(["evaluate", "--checkpoint", corrupt, "--episodes", "1"])
        #expect(corrupted.status == 65)
        #expect(corrupted.error.contains("checksum"), "\(corrupted.error)")
    }

    /// Runs the example executable `name` (built beside d4rl-run) with `arguments`: its exit
    /// status and standard output.
    static func runExample(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = CLI.executable.deletingLastPathComponent().appendingPathComponent(name)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    @Test func theEmbeddingExampleRunsAPolicyInASimulation() throws {
        let (status, output) = try Self.runExample("EmbeddedPolicy", [try Self.run + "/checkpoint.safetensors", "1800"])
        #expect(status == 0)
        #expect(output.hasPrefix("return ") && output.contains("target 1800"), "\(output)")
    }

    /// The many-agent example: 5 hoppers, 2 episodes each, through one policy.
    @Test func theCrowdExampleDrivesSeveralAgentsInOneLoop() throws {
        let (status, output) = try Self.runExample(
            "CrowdPolicy", [try Self.run + "/checkpoint.safetensors", "5", "2", "1800"])
        #expect(status == 0)
        #expect(output.hasPrefix("5 agents, 10 episodes: mean return ") && output.contains("(target 1800)"), "\(output)")
    }
}
