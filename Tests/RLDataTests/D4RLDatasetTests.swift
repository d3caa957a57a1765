import Foundation
import RLData
import Testing
import TestSupport

/// Loading every schema variant, splitting, views and statistics, on small synthetic files
/// whose expected values are computed here from the raw arrays.
@Suite struct D4RLDatasetTests {
    @Test func splitsOnTerminalsAndTimeouts() throws {
        let scratch = try ScratchDirectory()
        let spec = SyntheticD4RLFile()
        let values = try spec.write(to: scratch.path("a.hdf5"))
        let dataset = try D4RLDataset(file: scratch.path("a.hdf5"))
        #expect(dataset.trajectories.map(\.length) == [5, 3, 4])
        #expect(dataset.trajectories.map(\.ending) == [.terminated, .truncated, .terminated])
        #expect(dataset.trajectories.map(\.start) == [0, 5, 8])
        let expectedReturns = [0..<5, 5..<8, 8..<12].map { rows in rows.reduce(0.0) { $0 + values.rewards[$1] } }
        expectClose(dataset.trajectories.map(\.totalReward), expectedReturns, atol: 1e-9, rtol: 0, "returns")
        #expect(dataset.nextObservations == nil, "not loaded unless asked for")
    }

    @Test func everyStorageVariantLoadsTheSameValues() throws {
        let scratch = try ScratchDirectory()
        let baseline = try SyntheticD4RLFile().write(to: scratch.path("base.hdf5"))
        var variants: [SyntheticD4RLFile] = []
        var float64 = SyntheticD4RLFile()
        float64.floatType = .float64
        variants.append(float64)
        var column = SyntheticD4RLFile()
        column.rewardsAsColumn = true
        variants.append(column)
        var uint8 = SyntheticD4RLFile()
        uint8.flagType = .uint8
        variants.append(uint8)
        var floatFlags = SyntheticD4RLFile()
        floatFlags.flagType = .float32
        variants.append(floatFlags)
        var noNext = SyntheticD4RLFile()
        noNext.includeNextObservations = false
        variants.append(noNext)

        for (index, variant) in variants.enumerated() {
            let path = scratch.path("variant\(index).hdf5")
            try variant.write(to: path)
            let dataset = try D4RLDataset(file: path)
            #expect(dataset.observations == baseline.observations.map { Float($0) }, "variant \(index)")
            #expect(dataset.actions == baseline.actions.map { Float($0) }, "variant \(index)")
            #expect(dataset.rewards == baseline.rewards.map { Float($0) }, "variant \(index)")
            #expect(dataset.terminals == baseline.terminals, "variant \(index)")
            #expect(dataset.timeouts == baseline.timeouts, "variant \(index)")
            #expect(dataset.trajectories.map(\.length) == [5, 3, 4], "variant \(index)")
        }
    }

    @Test func nextObservationsLoadOnRequest() throws {
        let scratch = try ScratchDirectory()
        let values = try SyntheticD4RLFile().write(to: scratch.path("a.hdf5"))
        let dataset = try D4RLDataset(
            file: scratch.path("a.hdf5"), options: D4RLLoadOptions(loadNextObservations: true))
        #expect(dataset.nextObservations == values.observations.map { Float($0 + 1) })
    }

    @Test func versionZeroFilesEndEpisodesAtTheStepLimit() throws {
        let scratch = try ScratchDirectory()
        var spec = SyntheticD4RLFile()
        spec.includeTimeouts = false
        // 10 steps with no flag, then a terminal after 3 more: with a limit of 4 steps the
        // first 10 become 4 + 4 (truncated) + a 5-step episode ending at the terminal.
        spec.episodes = [(10, .none), (3, .terminal)]
        try spec.write(to: scratch.path("v0.hdf5"))
        let dataset = try D4RLDataset(file: scratch.path("v0.hdf5"), options: D4RLLoadOptions(maxEpisodeSteps: 4))
        #expect(dataset.trajectories.map(\.length) == [4, 4, 4, 1])
        #expect(dataset.trajectories.map(\.ending) == [.truncated, .truncated, .truncated, .terminated])
        #expect(dataset.timeouts.allSatisfy { !$0 })
    }

    @Test func trailingPartialEpisodeIsKeptAsUnfinished() throws {
        let scratch = try ScratchDirectory()
        var spec = SyntheticD4RLFile()
        spec.episodes = [(5, .terminal), (3, .none)]
        try spec.write(to: scratch.path("tail.hdf5"))
        let dataset = try D4RLDataset(file: scratch.path("tail.hdf5"))
        #expect(dataset.trajectories.map(\.ending) == [.terminated, .unfinished])
        #expect(dataset.trajectories.last?.rows == 5..<8)
        let report = try D4RLFileReport(file: scratch.path("tail.hdf5"))
        #expect(report.episodes == D4RLFileReport.Episodes(total: 2, terminated: 1, truncated: 0, unfinished: 1))
    }

    @Test func concatenatedFilesNeverJoinEpisodes() throws {
        let scratch = try ScratchDirectory()
        var first = SyntheticD4RLFile()
        first.episodes = [(4, .terminal), (2, .none)]  // ends mid-episode
        try first.write(to: scratch.path("1.hdf5"))
        var second = SyntheticD4RLFile()
        second.episodes = [(3, .timeout)]
        try second.write(to: scratch.path("2.hdf5"))
        let dataset = try D4RLDataset(files: [scratch.path("1.hdf5"), scratch.path("2.hdf5")])
        #expect(dataset.trajectories.map(\.length) == [4, 2, 3])
        #expect(dataset.trajectories.map(\.ending) == [.terminated, .unfinished, .truncated])
        #expect(dataset.trajectories.map(\.fileIndex) == [0, 0, 1])
        #expect(dataset.fileRowOffsets == [0, 6, 9])
    }

    @Test func trajectoryAccessorsAreViewsNotCopies() throws {
        let scratch = try ScratchDirectory()
        let values = try SyntheticD4RLFile().write(to: scratch.path("a.hdf5"))
        let dataset = try D4RLDataset(file: scratch.path("a.hdf5"))
        let second = dataset.trajectories[1]
        let view = dataset.observations(of: second)
        #expect(Array(view) == values.observations[(5 * 3)..<(8 * 3)].map { Float($0) })
        #expect(Array(dataset.actions(of: second)) == values.actions[(5 * 2)..<(8 * 2)].map { Float($0) })
        #expect(Array(dataset.rewards(of: second)) == values.rewards[5..<8].map { Float($0) })
        // Same storage: the slice's first element lives inside the dataset's buffer.
        let base = dataset.observations.withUnsafeBufferPointer { $0.baseAddress }
        let sliceStart = view.withUnsafeBufferPointer { $0.baseAddress }
        #expect(base.map { $0 + 15 } == sliceStart)
    }

    @Test(arguments: [1.0, 0.9])
    func returnsToGoMatchAnIndependentSum(discount: Double) throws {
        let scratch = try ScratchDirectory()
        let values = try SyntheticD4RLFile().write(to: scratch.path("a.hdf5"))
        let dataset = try D4RLDataset(file: scratch.path("a.hdf5"))
        let rtg = dataset.returnsToGo(discount: discount)
        var expected: [Double] = []
        for episode in [0..<5, 5..<8, 8..<12] {
            for t in episode {
                var sum = 0.0
                for (power, row) in (t..<episode.upperBound).enumerated() {
                    sum += pow(discount, Double(power)) * values.rewards[row]
                }
                expected.append(sum)
            }
        }
        expectClose(rtg, expected, atol: 1e-5, rtol: 0, "returns-to-go, discount \(discount)")
    }

    @Test func stateStatisticsMatchAnIndependentComputation() throws {
        let scratch = try ScratchDirectory()
        let values = try SyntheticD4RLFile().write(to: scratch.path("a.hdf5"))
        let dataset = try D4RLDataset(file: scratch.path("a.hdf5"))
        let statistics = dataset.stateStatistics()
        for column in 0..<3 {
            let feature = stride(from: column, to: values.observations.count, by: 3).map {
                Double(Float(values.observations[$0]))
            }
            let mean = feature.reduce(0, +) / Double(feature.count)
            let std = (feature.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(feature.count)).squareRoot()
            expectClose(statistics.mean[column], mean, atol: 1e-5, rtol: 0, "mean of column \(column)")
            expectClose(statistics.std[column], std, atol: 1e-5, rtol: 0, "std of column \(column)")
            // The reference's divisor is std + 1e-6: the two differ by 1e-6, to float32
            // rounding of values near std (a few 1e-7 here).
            expectClose(
                Double(statistics.normalizationScale[column]) - Double(statistics.std[column]), 1e-6, atol: 3e-7, rtol: 0,
                "divisor of \(column) less its std")
        }
    }

    @Test func normalizedScoresMatchHandComputedValues() {
        // 100 · (return − min) / (max − min), with FACTS.md's reference pairs.
        let hopper = D4RLReferenceScores.forID("Hopper-v4")
        expectClose(hopper?.normalize(1607.0138475), 50, atol: 1e-6, rtol: 0, "hopper")
        expectClose(
            D4RLReferenceScores.forID("halfcheetah-medium-v2")?.normalize(-280.178953), 0, atol: 1e-9, rtol: 0,
            "halfcheetah minimum")
        expectClose(D4RLReferenceScores.forID("walker2d")?.normalize(4592.3), 100, atol: 1e-9, rtol: 0, "walker2d")
        // The other FACTS.md pairs: ant, maze2d (v1, sparse) and antmaze.
        expectClose(
            D4RLReferenceScores.forID("ant-medium-v2")?.normalize((-325.6 + 3879.7) / 2), 50, atol: 1e-9,
            rtol: 0, "ant")
        expectClose(D4RLReferenceScores.forID("maze2d-umaze-v1")?.normalize(161.86), 100, atol: 1e-9, rtol: 0, "umaze")
        expectClose(D4RLReferenceScores.forID("maze2d-medium-v1")?.normalize(13.13), 0, atol: 1e-9, rtol: 0, "medium maze")
        expectClose(
            D4RLReferenceScores.forID("maze2d-large-v1")?.normalize(273.99), 100, atol: 1e-9, rtol: 0,
            "maze2d-large")
        expectClose(D4RLReferenceScores.forID("antmaze-umaze-v0")?.normalize(1), 100, atol: 1e-9, rtol: 0, "antmaze")
        #expect(D4RLReferenceScores.task(ofID: "HalfCheetah-v3") == "halfcheetah")
        #expect(D4RLReferenceScores.task(ofID: "half_cheetah-medium-v2") == "halfcheetah")
        #expect(D4RLReferenceScores.task(ofID: "maze2d-large-v1") == "maze2d-large")
        #expect(D4RLReferenceScores.task(ofID: "Pendulum-v1") == nil)
        #expect(D4RLReferenceScores.forID("Pendulum-v1") == nil)
    }
}
