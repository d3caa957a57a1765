import Foundation
import RLData
import Testing
import TestSupport

/// Minari datasets: the reader against the D4RL reader on the same episodes (both written by
/// real tools: minari 0.5.4 and h5py), Dict flattening, the writer's round trip, bad input.
@Suite struct MinariTests {
    static let root = TestFiles.shared.appendingPathComponent("datasets/minari").path
    static func minari(_ id: String) -> String { "\(root)/\(id)" }

    /// Asserts that `a` and `b` agree to float32 rounding, element by element.
    static func expectFloat32Equal(
        _ a: ArraySlice<Float>, _ b: ArraySlice<Float>, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let ulp = 2 * Double(Float.ulpOfOne)
        expectClose(a, b, atol: ulp, rtol: ulp, what, sourceLocation: sourceLocation)
    }

    @Test func hopperMediumMatchesTheD4RLFileEpisodeByEpisode() throws {
        let options = D4RLLoadOptions(loadNextObservations: true)
        let fromMinari = try D4RLDataset(file: Self.minari("mujoco/hopper/medium-v0"), options: options)
        let fromD4RL = try D4RLDataset(file: TestFiles.sharedDataset("hopper-medium"), options: options)
        #expect(fromMinari.count == fromD4RL.count)
        #expect(fromMinari.observationDimension == 11 && fromMinari.actionDimension == 3)
        #expect(fromMinari.trajectories.count == 164)
        #expect(fromMinari.trajectories.count == fromD4RL.trajectories.count)
        for (index, (m, d)) in zip(fromMinari.trajectories, fromD4RL.trajectories).enumerated() {
            #expect(m.start == d.start && m.length == d.length, "episode \(index)")
            #expect(m.ending == d.ending, "episode \(index): \(m.ending) against \(d.ending)")
            Self.expectFloat32Equal(fromMinari.observations(of: m), fromD4RL.observations(of: d), "episode \(index) observations")
            Self.expectFloat32Equal(fromMinari.actions(of: m), fromD4RL.actions(of: d), "episode \(index) actions")
            Self.expectFloat32Equal(fromMinari.rewards(of: m), fromD4RL.rewards(of: d), "episode \(index) rewards")
            expectClose(m.totalReward, d.totalReward, atol: 0, rtol: 1e-6, "episode \(index) return")
        }
        #expect(fromMinari.terminals == fromD4RL.terminals)
        #expect(fromMinari.timeouts == fromD4RL.timeouts)
        Self.expectFloat32Equal(
            try #require(fromMinari.nextObservations)[...], try #require(fromD4RL.nextObservations)[...],
            "next observations")
        #expect(fromMinari.environmentID == "Hopper-v4")
        #expect(fromMinari.metadata[0]["dataset_id"] == .string("mujoco/hopper/medium-v0"))
        #expect(fromMinari.referenceScores() == D4RLReferenceScores(minimum: -20.272305, maximum: 3234.3))
    }

    @Test func dictObservationsFlattenInTheSpaceKeyOrder() throws {
        let fromMinari = try D4RLDataset(file: Self.minari("mujoco/halfcheetah/random-dict-v0"))
        let fromD4RL = try D4RLDataset(file: TestFiles.sharedDataset("halfcheetah-random"))
        // The space lists desired_goal (the D4RL file's last two columns) before observation
        // (its first fifteen), as gymnasium sorts a Dict's keys; flattening follows that order.
        #expect(fromMinari.metadata[0]["observation_layout"] == .string("desired_goal[0..<2], observation[2..<17]"))
        #expect(fromMinari.observationDimension == 17)
        #expect(fromMinari.trajectories.count == 25 && fromMinari.count == 25_000)
        for row in stride(from: 0, to: fromMinari.count, by: 997) {
            let ours = fromMinari.observations[(row * 17)..<(row * 17 + 17)]
            let theirs = fromD4RL.observations[(row * 17)..<(row * 17 + 17)]
            Self.expectFloat32Equal(ours.prefix(2), theirs.suffix(2), "row \(row) desired_goal")
            Self.expectFloat32Equal(ours.suffix(15), theirs.prefix(15), "row \(row) observation")
        }
        #expect(fromMinari.trajectories.allSatisfy { $0.ending == .truncated })
        Self.expectFloat32Equal(fromMinari.actions[...], fromD4RL.actions[...], "actions")
    }

    @Test func datasetIDsResolveUnderTheDatasetsRoot() throws {
        // The variable is read at each resolution; no other test depends on it.
        setenv("MINARI_DATASETS_PATH", Self.root, 1)
        #expect(try DatasetSource.resolve("mujoco/hopper/medium-v0") == .minari(dataFolder: Self.minari("mujoco/hopper/medium-v0/data")))
        #expect(try DatasetSource.resolve(Self.minari("mujoco/hopper/medium-v0/data")) == .minari(dataFolder: Self.minari("mujoco/hopper/medium-v0/data")))
        #expect(try DatasetSource.resolve(TestFiles.sharedDataset("hopper-medium")) == .d4rlFile(TestFiles.sharedDataset("hopper-medium")))
        #expect(try DatasetSource.resolve("missing.hdf5") == .d4rlFile("missing.hdf5"))
        let error = #expect(throws: D4RLError.self) { try DatasetSource.resolve("mujoco/hopper/no-such-v0") }
        #expect(error?.description.contains("MINARI_DATASETS_PATH") == true)
        #expect(error?.description.contains(Self.root) == true)
    }

    // MARK: - Writing

    @Test func writerOutputReadsBackEpisodeForEpisode() throws {
        let scratch = try ScratchDirectory()
        let source = try D4RLDataset(file: TestFiles.sharedDataset("hopper-medium"), options: D4RLLoadOptions(loadNextObservations: true))
        let episodes = Array(source.trajectories.prefix(6))
        let folder = scratch.path("sim/hopper/replay-v0")
        let writer = try MinariDatasetWriter(
            folder: folder,
            configuration: .init(
                observationDimension: 11, actionDimension: 3, datasetID: "sim/hopper/replay-v0", environmentID: "Hopper-v4",
                referenceScores: D4RLReferenceScores.forID("hopper"), algorithmName: "replay"))
        let sourceNext = try #require(source.nextObservations)
        for episode in episodes {
            for row in episode.rows {
                try writer.append(
                    observation: Array(source.observations[(row * 11)..<(row * 11 + 11)]),
                    action: Array(source.actions[(row * 3)..<(row * 3 + 3)]), reward: source.rewards[row],
                    terminal: source.terminals[row], timeout: source.timeouts[row],
                    nextObservation: Array(sourceNext[(row * 11)..<(row * 11 + 11)]))
            }
        }
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/data"), "nothing under the final name before finish")
        try writer.finish()
        #expect(writer.episodeCount == 6)
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/data.partial"))

        let back = try D4RLDataset(file: folder, options: D4RLLoadOptions(loadNextObservations: true))
        #expect(back.trajectories.count == episodes.count)
        for (m, d) in zip(back.trajectories, episodes) {
            #expect(m.length == d.length && m.ending == d.ending)
            #expect(back.observations(of: m) == source.observations(of: d))
            #expect(back.actions(of: m) == source.actions(of: d))
            #expect(back.rewards(of: m) == source.rewards(of: d))
        }
        #expect(back.environmentID == "Hopper-v4")
        #expect(back.metadata[0]["algorithm_name"] == .string("replay"))
        #expect(back.referenceScores() == D4RLReferenceScores.forID("hopper"))

        // A dataset is never replaced.
        let again = #expect(throws: D4RLError.self) {
            try MinariDatasetWriter(folder: folder, configuration: .init(observationDimension: 11, actionDimension: 3, datasetID: "x"))
        }
        #expect(again?.description.contains("already holds a dataset") == true)
    }

    @Test func writerSplitsDictObservationsAndReaderJoinsThem() throws {
        let scratch = try ScratchDirectory()
        let space = MinariSpace.dict([
            MinariSubspace(key: "goal", space: .box(shape: [2], dtype: "float32")),
            MinariSubspace(key: "state", space: .box(shape: [3], dtype: "float32")),
        ])
        let folder = scratch.path("dict-v0")
        let writer = try MinariDatasetWriter(
            folder: folder, configuration: .init(observationDimension: 5, actionDimension: 1, datasetID: "dict-v0", observationSpace: space))
        var observation: [Float] = [0, 1, 2, 3, 4]
        for step in 0..<7 {
            let next = observation.map { $0 + 10 }
            try writer.append(observation: observation, action: [Float(step)], reward: 1, terminal: step == 3, nextObservation: next)
            observation = step == 3 ? [100, 101, 102, 103, 104] : next
        }
        try writer.finish()  // the second episode (3 steps, no flag) is written as it is
        let hdf5 = try HDF5File.open("\(folder)/data/main_data.hdf5")
        #expect(try hdf5.dataset("episode_0/observations/goal").shape == [5, 2])
        #expect(try hdf5.dataset("episode_0/observations/state").readRows(4..<5, as: Float.self) == [42, 43, 44])
        #expect(try hdf5.attribute("id", of: "episode_1").readArray(as: Int64.self) == [1])
        let back = try D4RLDataset(file: folder)
        #expect(back.trajectories.map(\.length) == [4, 3])
        #expect(back.trajectories.map(\.ending) == [.terminated, .truncated])
        #expect(Array(back.observations.prefix(10)) == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14])
        #expect(Array(back.observations[20..<25]) == [100, 101, 102, 103, 104])
        // Next observations are rows 1...T of each episode's T + 1, joined the same way.
        let withNext = try D4RLDataset(file: folder, options: D4RLLoadOptions(loadNextObservations: true))
        let next = try #require(withNext.nextObservations)
        #expect(Array(next.prefix(10)) == [10, 11, 12, 13, 14, 20, 21, 22, 23, 24])
        #expect(Array(next[15..<20]) == [40, 41, 42, 43, 44] && Array(next[20..<25]) == [110, 111, 112, 113, 114])
    }

    /// A float64 dataset stays float64 through `slice`: values float32 cannot hold (0.1) come
    /// back to the last digit, with the spaces' dtypes, and the flags and episode ends too.
    @Test func aSliceOfAFloat64DatasetKeepsEveryDigit() throws {
        let scratch = try ScratchDirectory()
        let folder = scratch.path("precise-v0")
        let writer = try MinariDatasetWriter(
            folder: folder,
            configuration: .init(
                observationDimension: 2, actionDimension: 1, datasetID: "precise-v0",
                observationSpace: .box(shape: [2], dtype: "float64"), actionSpace: .box(shape: [1], dtype: "float64")))
        func observation(_ step: Int) -> [Double] { [0.1 * Double(step), 1 / 3 + Double(step)] }
        for step in 0..<9 {  // episodes of 3 steps; the next observation of step 2 ends the first
            try writer.appendFloat64(
                observation: observation(step % 3 == 0 ? step * 10 : step), action: [0.7 + Double(step)], reward: 0.2 * Double(step),
                terminal: step == 2, timeout: step == 5 || step == 8,
                nextObservation: observation(step + 1))
        }
        try writer.finish()
        let source = try HDF5File.open("\(folder)/data/main_data.hdf5")
        #expect(try source.dataset("episode_0/observations").elementType == .float(bits: 64))

        let copy = scratch.path("copy-v0")
        let slice = DatasetSlice(of: try D4RLDataset(file: folder), source: folder, maxSteps: 6)
        try slice.writeMinari(to: copy, id: "copy-v0")
        let copied = try HDF5File.open("\(copy)/data/main_data.hdf5")
        #expect(try copied.memberNames(of: "") == ["episode_0", "episode_1"])
        for episode in ["episode_0", "episode_1"] {
            for key in ["observations", "actions", "rewards"] {
                let original = try source.dataset("\(episode)/\(key)")
                let again = try copied.dataset("\(episode)/\(key)")
                #expect(again.elementType == .float(bits: 64), "\(episode)/\(key) is \(again.elementType)")
                #expect(try again.readArray(as: Double.self) == original.readArray(as: Double.self), "\(episode)/\(key)")
            }
            for key in ["terminations", "truncations"] {
                #expect(
                    try copied.dataset("\(episode)/\(key)").readBooleans() == source.dataset("\(episode)/\(key)").readBooleans(),
                    "\(episode)/\(key)")
            }
        }
        let metadata = try String(contentsOfFile: "\(copy)/data/metadata.json", encoding: .utf8)
        #expect(metadata.contains(#"\"dtype\": \"float64\""#), "\(metadata)")
    }

    /// A float64 D4RL file (as h5py writes one from NumPy's default) stays float64 when it
    /// becomes a Minari dataset.
    @Test func aFloat64D4RLFileStaysFloat64AsMinari() throws {
        let scratch = try ScratchDirectory()
        let n = 6
        let copy = scratch.path("copy-v0")
        let consistent = scratch.path("consistent.hdf5")
        do {
            let rows = (0...n).map { [0.1 * Double($0), 0.2 * Double($0)] }
            let file = try HDF5File.create(consistent)
            try file.write(rows[0..<n].flatMap { $0 }, to: "observations", type: .float64, shape: [n, 2])
            try file.write(rows[1...n].flatMap { $0 }, to: "next_observations", type: .float64, shape: [n, 2])
            try file.write((0..<n).map { 1 / 3 + Double($0) }, to: "actions", type: .float64, shape: [n, 1])
            try file.write((0..<n).map { 0.7 * Double($0) }, to: "rewards", type: .float64, shape: [n])
            try file.write((0..<n).map { $0 == n - 1 }, to: "terminals")
            try file.write([Bool](repeating: false, count: n), to: "timeouts")
        }
        try DatasetSlice(of: try D4RLDataset(file: consistent, options: D4RLLoadOptions(loadNextObservations: true)), source: consistent)
            .writeMinari(to: copy, id: "copy-v0")
        let copied = try HDF5File.open("\(copy)/data/main_data.hdf5")
        let source = try HDF5File.open(consistent)
        #expect(try copied.dataset("episode_0/observations").elementType == .float(bits: 64))
        #expect(
            try copied.dataset("episode_0/observations").readArray(as: Double.self)
                == source.dataset("observations").readArray(as: Double.self) + source.dataset("next_observations").readRows((n - 1)..<n, as: Double.self))
        #expect(try copied.dataset("episode_0/actions").readArray(as: Double.self) == source.dataset("actions").readArray(as: Double.self))
        #expect(try copied.dataset("episode_0/rewards").readArray(as: Double.self) == source.dataset("rewards").readArray(as: Double.self))
    }

    /// Many one-step episodes, the case heavy in objects (one group of five arrays each): every
    /// row and flag comes back in id order (`episode_10` sorts before `episode_2` as text), the
    /// next observations included, and the writer stores each array contiguously, as minari
    /// does (a chunked array carries an index of its own; `bench data --minari-episodes`
    /// measures the reading).
    @Test func manyOneStepEpisodesComeBackInIDOrder() throws {
        let scratch = try ScratchDirectory()
        let folder = scratch.path("many-v0")
        let writer = try MinariDatasetWriter(
            folder: folder, configuration: .init(observationDimension: 2, actionDimension: 1, datasetID: "many-v0"))
        let count = 1_200
        for episode in 0..<count {
            let value = Float(episode)
            try writer.append(
                observation: [value, -value], action: [value / 2], reward: value, terminal: episode % 3 == 0,
                timeout: episode % 3 != 0, nextObservation: [value + 0.5, -value - 0.5])
        }
        try writer.finish()
        let hdf5 = try HDF5File.open("\(folder)/data/main_data.hdf5")
        for key in ["observations", "actions", "rewards", "terminations", "truncations"] {
            #expect(try hdf5.dataset("episode_7/\(key)").chunkShape == nil, "\(key) is stored contiguously")
        }
        let back = try D4RLDataset(file: folder, options: D4RLLoadOptions(loadNextObservations: true))
        #expect(back.count == count && back.trajectories.count == count)
        let next = try #require(back.nextObservations)
        var wrong: [Int] = []
        for row in 0..<count {
            let value = Float(row)
            let terminal = row % 3 == 0
            if back.observations[(2 * row)..<(2 * row + 2)] != [value, -value]
                || next[(2 * row)..<(2 * row + 2)] != [value + 0.5, -value - 0.5] || back.actions[row] != value / 2
                || back.rewards[row] != value || back.terminals[row] != terminal || back.timeouts[row] == terminal
                || back.trajectories[row].rows != row..<(row + 1)
            {
                wrong.append(row)
            }
        }
        #expect(wrong.isEmpty, "rows that differ from what was written: \(wrong.prefix(10))")
    }

    @Test func writerRefusesABrokenObservationSequenceAndKeepsNothing() throws {
        let scratch = try ScratchDirectory()
        let folder = scratch.path("broken-v0")
        let writer = try MinariDatasetWriter(folder: folder, configuration: .init(observationDimension: 2, actionDimension: 1, datasetID: "b"))
        try writer.append(observation: [0, 0], action: [0], reward: 0, terminal: false, nextObservation: [1, 1])
        let error = #expect(throws: D4RLError.self) {
            try writer.append(observation: [5, 5], action: [0], reward: 0, terminal: true, nextObservation: [2, 2])
        }
        #expect(error?.description.contains("differs from the previous step's next observation") == true)
        #expect(throws: D4RLError.self) {
            try writer.append(observation: [1, 1], action: [.nan], reward: 0, terminal: true, nextObservation: [2, 2])
        }
        writer.abandon()
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    // MARK: - Bad input

    /// Writes a one-episode Minari dataset by hand, then lets `damage` break it.
    static func handMade(
        in scratch: ScratchDirectory, metadata: [String: String] = [:], floatID: Double? = nil,
        damage: (HDF5File) throws -> Void = { _ in }
    ) throws -> String {
        let folder = scratch.path("hand-v0")
        try FileManager.default.createDirectory(atPath: "\(folder)/data", withIntermediateDirectories: true)
        var fields: [String: String] = [
            "total_episodes": "1", "total_steps": "3", "data_format": "\"hdf5\"",
            "observation_space": #""{\"type\": \"Box\", \"dtype\": \"float64\", \"shape\": [2]}""#,
            "action_space": #""{\"type\": \"Box\", \"dtype\": \"float32\", \"shape\": [1]}""#,
        ]
        for (key, value) in metadata { fields[key] = value }
        let json = "{" + fields.filter { !$0.value.isEmpty }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        try json.write(toFile: "\(folder)/data/metadata.json", atomically: true, encoding: .utf8)
        let file = try HDF5File.create("\(folder)/data/main_data.hdf5")
        let layout = HDF5DatasetLayout(chunkRows: 4, gzipLevel: nil, shuffle: false, extendable: false)
        try file.createGroup("episode_0")
        if let floatID {
            try file.setAttribute("id", to: floatID, on: "episode_0")
        } else {
            try file.setAttribute("id", to: Int64(0), on: "episode_0")
        }
        func write<T: HDF5Numeric>(_ key: String, _ values: [T], _ type: HDF5StorageType, _ shape: [Int]) throws {
            let dataset = try file.createDataset("episode_0/\(key)", type: type, shape: shape, layout: layout)
            try values.withUnsafeBufferPointer { try dataset.writeRows(0..<shape[0], from: $0) }
        }
        try write("observations", [Double](repeating: 0.5, count: 8), .float64, [4, 2])
        try write("actions", [Float](repeating: 0.1, count: 3), .float32, [3, 1])
        try write("rewards", [1.0, 1.0, 1.0], .float64, [3])
        try write("terminations", [UInt8]([0, 0, 1]), .bool, [3])
        try write("truncations", [UInt8]([0, 0, 0]), .bool, [3])
        try damage(file)
        try file.flush()
        return folder
    }

    /// Loading `folder` fails with a message that contains every one of `phrases`.
    static func expectRefused(_ folder: String, _ phrases: String...) {
        let error = #expect(throws: D4RLError.self) { try D4RLDataset(file: folder) }
        for phrase in phrases {
            #expect(error?.description.contains(phrase) == true, "\(error?.description ?? "no error") lacks '\(phrase)'")
        }
    }

    @Test func aHandMadeDatasetLoads() throws {
        let scratch = try ScratchDirectory()
        let dataset = try D4RLDataset(file: try Self.handMade(in: scratch))
        #expect(dataset.count == 3 && dataset.trajectories.first?.ending == .terminated)
    }

    @Test func missingMetadataIsNamed() throws {
        let scratch = try ScratchDirectory()
        let folder = try Self.handMade(in: scratch)
        try FileManager.default.removeItem(atPath: "\(folder)/data/metadata.json")
        Self.expectRefused(folder, "metadata.json", "data/main_data.hdf5")
    }

    @Test func theArrowFormatIsRefusedWithTheWayOut() throws {
        let scratch = try ScratchDirectory()
        Self.expectRefused(try Self.handMade(in: scratch, metadata: ["data_format": "\"arrow\""]), "data_format", "arrow", "hdf5")
    }

    @Test func unsupportedSpacesAreNamed() throws {
        let scratch = try ScratchDirectory()
        let discrete = #""{\"type\": \"Discrete\", \"n\": 4}""#
        Self.expectRefused(try Self.handMade(in: scratch, metadata: ["observation_space": discrete]), "observation_space", "Discrete")
        let scratch2 = try ScratchDirectory()
        let nested = #""{\"type\": \"Dict\", \"subspaces\": {\"a\": {\"type\": \"Tuple\", \"spaces\": []}}}""#
        Self.expectRefused(try Self.handMade(in: scratch2, metadata: ["observation_space": nested]), "subspace \"a\"", "Tuple")
        let scratch3 = try ScratchDirectory()
        Self.expectRefused(try Self.handMade(in: scratch3, metadata: ["observation_space": "\"{not json\""]), "observation_space", "not valid JSON")
    }

    @Test func episodesWithMismatchedLengthsAreRefused() throws {
        let scratch = try ScratchDirectory()
        let folder = try Self.handMade(in: scratch, metadata: ["total_episodes": "2", "total_steps": "5"]) { file in
            let layout = HDF5DatasetLayout(chunkRows: 4, gzipLevel: nil, shuffle: false, extendable: false)
            let extra = try file.createDataset("episode_1/actions", type: .float32, shape: [2, 1], layout: layout)
            try [Float(0), 0].withUnsafeBufferPointer { try extra.writeRows(0..<2, from: $0) }
            try file.setAttribute("id", to: Int64(1), on: "episode_1")
            for key in ["rewards", "terminations", "truncations"] {
                let column = try file.createDataset("episode_1/\(key)", type: .float64, shape: [2], layout: layout)
                try [0.0, 1.0].withUnsafeBufferPointer { try column.writeRows(0..<2, from: $0) }
            }
            // Two actions need three observation rows; this episode has two.
            let observations = try file.createDataset("episode_1/observations", type: .float64, shape: [2, 2], layout: layout)
            try [Double](repeating: 0, count: 4).withUnsafeBufferPointer { try observations.writeRows(0..<2, from: $0) }
        }
        Self.expectRefused(folder, "episode_1/observations", "has 2 rows", "T + 1")
    }

    @Test func aMissingEpisodeIDIsNamed() throws {
        let scratch = try ScratchDirectory()
        let folder = try Self.handMade(in: scratch, metadata: ["total_episodes": ""]) { file in
            try file.createGroup("episode_7")
        }
        Self.expectRefused(folder, "episode_7@id", "id attribute")
    }

    @Test func countsThatDisagreeWithTheMetadataAreRefused() throws {
        let scratch = try ScratchDirectory()
        Self.expectRefused(try Self.handMade(in: scratch, metadata: ["total_steps": "30"]), "total_steps", "declares 30 steps")
    }

    @Test func aFlagBeforeTheLastStepIsRefused() throws {
        let scratch = try ScratchDirectory()
        let folder = try Self.handMade(in: scratch) { file in
            try [UInt8]([1, 0, 0]).withUnsafeBufferPointer { try file.dataset("episode_0/truncations").writeRows(0..<3, from: $0) }
        }
        Self.expectRefused(folder, "episode_0/truncations", "step 0 of 3")
    }

    /// Metadata that disagrees with itself or with the data is refused, naming the key.
    @Test func countsAndReferencesMustBeWhatTheySay() throws {
        for (metadata, phrases) in [
            (["total_episodes": "-1"], ["total_episodes", "-1.0, not a count"]),
            (["total_episodes": "1.5"], ["total_episodes", "not a count"]),
            (["total_steps": "\"3\""], ["total_steps", "the text \"3\""]),
            (["total_steps": "1e20"], ["total_steps", "not a count"]),
            (["ref_min_score": "5", "ref_max_score": "5"], ["ref_min_score", "the maximum above the minimum"]),
            (["ref_min_score": "-1.7e308", "ref_max_score": "1.7e308"], ["ref_min_score", "finite references"]),
            (["ref_min_score": "0", "ref_max_score": "1e300"], ["ref_min_score", "within ±10¹²"]),
            (["dataset_id": "\"../x/ds\""], ["dataset_id", "not a dataset id"]),
            (["dataset_id": "\"/etc/passwd-v0\""], ["dataset_id", "not a dataset id"]),
            (["dataset_id": "5"], ["dataset_id", "not a dataset id"]),
            (["dataset_id": "\"a/b\\nerror: forged\\u001b[31m\""], ["dataset_id", "not a dataset id"]),
            (["dataset_id": "\" \""], ["dataset_id", "not a dataset id"]),
            (["ref_min_score": "1.0", "ref_max_score": "1.0000000000000002"], ["ref_min_score", "by more than rounding"]),
            (["ref_max_score": "100"], ["ref_min_score", "the other reference score is given"]),
        ] {
            let scratch = try ScratchDirectory()
            let folder = try Self.handMade(in: scratch, metadata: metadata)
            let error = #expect(throws: D4RLError.self) { try D4RLDataset(file: folder) }
            for phrase in phrases {
                #expect(error?.description.contains(phrase) == true, "\(metadata): \(error?.description ?? "loaded")")
            }
        }
    }

    /// A key given twice would be read one way here and another by Python (which keeps the
    /// last): refused, naming it.
    @Test func aRepeatedKeyIsRefused() throws {
        let scratch = try ScratchDirectory()
        let folder = try Self.handMade(in: scratch)
        let path = "\(folder)/data/metadata.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try (#"{"total_steps": 99, "# + text.dropFirst()).write(toFile: path, atomically: true, encoding: .utf8)
        Self.expectRefused(folder, "total_steps", "appears twice")
    }

    /// An episode id stored as a float (1.5) is not read as another episode's (1).
    @Test func aFloatEpisodeIDIsRefused() throws {
        let scratch = try ScratchDirectory()
        Self.expectRefused(try Self.handMade(in: scratch, floatID: 1.5), "episode_0@id", "integer type")
    }

    /// An id stays under the datasets root; a metadata file that is a FIFO is refused at once
    /// instead of blocking the reader.
    @Test func idsStayUnderTheRootAndMetadataMustBeAFile() throws {
        let error = #expect(throws: D4RLError.self) { try DatasetSource.resolve("../x/ds") }
        #expect(error?.description.contains("would leave the datasets root") == true, "\(error?.description ?? "")")
        let scratch = try ScratchDirectory()
        let folder = try Self.handMade(in: scratch)
        try FileManager.default.removeItem(atPath: "\(folder)/data/metadata.json")
        #expect(mkfifo("\(folder)/data/metadata.json", 0o644) == 0)
        Self.expectRefused(folder, "metadata.json", "not a regular file")
    }
}
