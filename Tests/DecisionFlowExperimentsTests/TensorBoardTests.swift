import DecisionFlowExperiments
import DecisionFlowTraining
import Foundation
import RLData
import TestSupport
import Testing
import TrainingTestSupport

/// The TensorBoard event file: TFRecord framing with masked CRC-32C around Event protobufs,
/// holding the log's scalars, kept in step with `log.jsonl` across resumes.
@Suite struct TensorBoardTests {
    @Test func crcMatchesTheCastagnoliCheckValue() {
        // The standard check value of CRC-32C (RFC 3720, appendix B.4).
        #expect(TensorBoardEvents.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(TensorBoardEvents.crc32c([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    /// Asserts that the event file holds the version record, then one event per log line
    /// with that line's scalars.
    static func expectEventsMatchLog(_ run: TrainingRun) throws {
        let events = try TensorBoardEvents.parse(try Data(contentsOf: URL(fileURLWithPath: run.directory.eventsPath)))
        let lines = TrainingRun.readLog(run.directory.logPath)
        #expect(events.first?.fileVersion == "brain.Event:2")
        #expect(events.count == lines.count + 1)
        for (event, line) in zip(events.dropFirst(), lines) {
            #expect(event.step == Int64(line.step))
            let scalars = Dictionary(uniqueKeysWithValues: event.scalars.map { ($0.tag, $0.value) })
            #expect(scalars["train/loss"] == Float(line.loss), "step \(line.step)")
            #expect(scalars["train/learning_rate"] == line.learningRate)
            #expect(scalars["train/grad_norm"] == line.gradientNorm)
            #expect(scalars["eval/normalized_score"] == line.normalizedScore.map { Float($0) })
            expectClose(event.wallTime, events[0].wallTime + line.elapsedSeconds, atol: 1e-6, rtol: 0, "wall time")
        }
    }

    @Test func aRunWritesTheLogsScalarsAndResumeKeepsThemInStep() throws {
        let scratch = try ScratchDirectory()
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        var configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 20)
        configuration.logEvery = 5
        configuration.checkpointEvery = 10
        configuration.evaluateEvery = 10
        let directory = scratch.path("run")
        let run = try TrainingRun.start(configuration: configuration, dataset: dataset, directory: directory)
        run.logSinks.append(TensorBoardLog())
        _ = try run.run(evaluate: { trainer in Double(trainer.step) / 4 })
        try Self.expectEventsMatchLog(run)
        let scores = try TensorBoardEvents.parse(try Data(contentsOf: URL(fileURLWithPath: run.directory.eventsPath)))
            .flatMap(\.scalars).filter { $0.tag == "eval/normalized_score" }.map(\.value)
        #expect(scores == [2.5, 5])
        let started = try TensorBoardEvents.parse(try Data(contentsOf: URL(fileURLWithPath: run.directory.eventsPath)))[0].wallTime

        // A line logged after the last checkpoint (as when a kill comes between the two) is
        // dropped on resume from both files, and the start time is kept.
        let strayLine = #"{"elapsed_seconds":99,"grad_norm":1,"learning_rate":0.001,"loss":0.5,"step":25,"steps_per_second":1}"#
        try (String(contentsOfFile: run.directory.logPath, encoding: .utf8) + strayLine + "\n").write(
            toFile: run.directory.logPath, atomically: true, encoding: .utf8)
        let resumed = try TrainingRun.resume(directory: directory, dataset: dataset, steps: 30)
        resumed.logSinks.append(TensorBoardLog())
        // The sink is brought in step with the log as training starts: seen at the first step.
        var afterResume: [TensorBoardEvents.Event] = []
        _ = try resumed.run(onStep: { record, _ in
            if record.step == 21 {
                afterResume = (try? TensorBoardEvents.parse(Data(contentsOf: URL(fileURLWithPath: resumed.directory.eventsPath)))) ?? []
            }
        })
        #expect(afterResume.map(\.step).last == 20)
        #expect(afterResume.first?.wallTime == started)
        try Self.expectEventsMatchLog(resumed)
        #expect(TrainingRun.readLog(resumed.directory.logPath).map(\.step) == [5, 10, 15, 20, 25, 30])
    }

    /// A resume after log.jsonl was deleted says so, and the event file keeps the scalars it
    /// had up to the checkpoint instead of being wiped with the log.
    @Test func aDeletedLogDoesNotWipeTheEventHistory() throws {
        let scratch = try ScratchDirectory()
        let dataset = try D4RLDataset(file: TrainingFixtures.bundledDataset)
        var configuration = TrainingFixtures.smallConfiguration(datasets: [TrainingFixtures.bundledDataset], steps: 20)
        configuration.logEvery = 5
        configuration.checkpointEvery = 10
        let directory = scratch.path("run")
        let run = try TrainingRun.start(configuration: configuration, dataset: dataset, directory: directory)
        run.logSinks.append(TensorBoardLog())
        _ = try run.run()
        try FileManager.default.removeItem(atPath: run.directory.logPath)
        let resumed = try TrainingRun.resume(directory: directory, dataset: dataset, steps: 30)
        #expect(resumed.notes.contains { $0.contains("held no line up to step 20") }, "\(resumed.notes)")
        resumed.logSinks.append(TensorBoardLog())
        _ = try resumed.run()
        let events = try TensorBoardEvents.parse(try Data(contentsOf: URL(fileURLWithPath: resumed.directory.eventsPath)))
        #expect(events.dropFirst().map(\.step) == [5, 10, 15, 20, 25, 30])
        #expect(TrainingRun.readLog(resumed.directory.logPath).map(\.step) == [25, 30])
    }

    @Test func aDamagedRecordIsDetected() throws {
        let line = LogLine(
            step: 3, loss: 0.25, learningRate: 1e-4, gradientNorm: 2, elapsedSeconds: 1, stepsPerSecond: 3,
            normalizedScore: nil, changes: nil)
        var data = TensorBoardEvents.file(startTime: 1_000, lines: [line])
        let events = try TensorBoardEvents.parse(data)
        #expect(events.count == 2 && events[1].step == 3 && events[1].wallTime == 1_001)
        data[data.count - 7] ^= 0x01  // a bit of the last payload
        #expect(throws: TensorBoardEvents.FormatError.self) { try TensorBoardEvents.parse(data) }
        #expect(throws: TensorBoardEvents.FormatError.self) { try TensorBoardEvents.parse(data.prefix(data.count - 3)) }
    }
}
