import CHDF5
import Foundation
import RLData
import TestSupport
import Testing

/// Every kind of bad file gives a typed error that names the file and key and says what to
/// do, and never a crash or a partial dataset.
@Suite struct BadInputTests {
    /// Loads `path` and returns the error, recording a test issue if loading succeeded.
    func loadError(_ path: String, options: D4RLLoadOptions = D4RLLoadOptions()) -> D4RLError? {
        do {
            let dataset = try D4RLDataset(file: path, options: options)
            Issue.record("loaded \(dataset.count) steps from a bad file")
            return nil
        } catch let error as D4RLError {
            #expect(error.description.contains(path), "message names the file: \(error)")
            #expect(!error.remedy.isEmpty)
            return error
        } catch {
            Issue.record("untyped error: \(error)")
            return nil
        }
    }

    func expectError(
        _ spec: SyntheticD4RLFile, kind: D4RLError.Kind, key: String, mentioning words: [String] = []
    ) throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("bad.hdf5")
        try spec.write(to: path)
        let error = loadError(path)
        #expect(error?.kind == kind, "\(String(describing: error))")
        #expect(error?.key == key, "\(String(describing: error))")
        #expect(error?.description.contains("'\(key)'") == true)
        for word in words {
            #expect(error?.description.contains(word) == true, "\(String(describing: error)) lacks \(word)")
        }
    }

    @Test func missingFile() {
        let error = loadError("/nonexistent/hopper-medium-v2.hdf5")
        #expect(error?.kind == .unreadableFile)
        #expect(error?.description.contains("no such file") == true)
    }

    @Test func notAnHDF5File() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("notes.hdf5")
        try Data("observations,actions\n1,2\n".utf8).write(to: URL(fileURLWithPath: path))
        let error = loadError(path)
        #expect(error?.kind == .unreadableFile)
        // HDF5's own reason travels in the message.
        #expect(error?.problem.contains("signature") == true, "\(String(describing: error))")
    }

    @Test func truncatedToHalfItsSize() throws {
        let scratch = try ScratchDirectory()
        let source = TestFiles.sharedDataset("hopper-medium")
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let path = scratch.path("half.hdf5")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        #expect(loadError(path)?.kind == .unreadableFile)
    }

    @Test(arguments: ["observations", "actions", "rewards", "terminals"])
    func missingRequiredKey(key: String) throws {
        var spec = SyntheticD4RLFile()
        spec.omittedKeys = [key]
        try expectError(spec, kind: .missingKey, key: key, mentioning: ["missing"])
    }

    @Test(arguments: ["actions", "rewards", "terminals", "timeouts", "next_observations"])
    func lengthMismatch(key: String) throws {
        var spec = SyntheticD4RLFile()
        spec.shortenedKey = key
        try expectError(spec, kind: .lengthMismatch, key: key, mentioning: ["11 rows", "12"])
    }

    @Test func rankMismatch() throws {
        var spec = SyntheticD4RLFile()
        spec.flattenActions = true
        try expectError(spec, kind: .wrongRank, key: "actions", mentioning: ["(N, width)"])
    }

    /// Writes a file whose keys are given explicitly, for shapes the synthetic spec cannot make.
    func writeRaw(_ path: String, rewards: ([Double], [Int])?, terminals: (HDF5File) throws -> Void) throws {
        let values = SyntheticD4RLFile().arrays()
        let file = try HDF5File.create(path)
        try file.write(values.observations, to: "observations", type: .float32, shape: [12, 3])
        try file.write(values.actions, to: "actions", type: .float32, shape: [12, 2])
        let (data, shape) = rewards ?? (values.rewards, [12])
        try file.write(data, to: "rewards", type: .float32, shape: shape)
        try terminals(file)
    }

    @Test func rewardsWithSeveralColumns() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("wide.hdf5")
        let flags = SyntheticD4RLFile().arrays().terminals
        try writeRaw(path, rewards: ([Double](repeating: 1, count: 24), [12, 2])) {
            try $0.write(flags, to: "terminals")
        }
        let error = loadError(path)
        #expect(error?.kind == .wrongRank)
        #expect(error?.key == "rewards")
    }

    @Test(arguments: [
        ("observations", Double.nan), ("observations", Double.infinity), ("rewards", Double.nan),
        ("rewards", -Double.infinity),
    ])
    func nonFiniteValues(key: String, value: Double) throws {
        var spec = SyntheticD4RLFile()
        spec.patch = { arrays in
            if key == "observations" { arrays.observations[7 * 3 + 1] = value } else { arrays.rewards[7] = value }
        }
        try expectError(spec, kind: .nonFinite, key: key, mentioning: ["row 7"])
    }

    @Test func emptyDataset() throws {
        var spec = SyntheticD4RLFile()
        spec.episodes = []
        try expectError(spec, kind: .empty, key: "observations", mentioning: ["no steps"])
    }

    @Test func zeroCompleteEpisodes() throws {
        var spec = SyntheticD4RLFile()
        spec.episodes = [(6, .none)]
        try expectError(spec, kind: .noCompleteEpisodes, key: "terminals", mentioning: ["no complete episode"])
    }

    @Test func stringsWhereNumbersBelong() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("strings.hdf5")
        try writeRaw(path, rewards: nil) { try $0.writeString("not flags", to: "terminals") }
        let error = loadError(path)
        #expect(error?.kind == .wrongType)
        #expect(error?.key == "terminals")
    }

    @Test func concatenatingDifferentEnvironmentsFails() throws {
        let scratch = try ScratchDirectory()
        try SyntheticD4RLFile().write(to: scratch.path("a.hdf5"))
        var wider = SyntheticD4RLFile()
        wider.observationDimension = 4
        try wider.write(to: scratch.path("b.hdf5"))
        #expect(throws: D4RLError.self) {
            try D4RLDataset(files: [scratch.path("a.hdf5"), scratch.path("b.hdf5")])
        }
        do {
            _ = try D4RLDataset(files: [scratch.path("a.hdf5"), scratch.path("b.hdf5")])
        } catch let error as D4RLError {
            #expect(error.kind == .dimensionMismatch)
            #expect(error.key == "observations")
            #expect(error.file == scratch.path("b.hdf5"))
        }
    }
}

/// Files that declare far more data than they hold (issue #10, class 1): a few kilobytes
/// naming 10¹² rows, whose unwritten chunks HDF5 would happily "read" as fill values.
@Suite struct DeclaredSizeTests {
    /// Writes a D4RL-shaped file whose four keys are chunked datasets of `rows` rows that were
    /// never written, through the raw C API.
    static func writeHollowFile(_ path: String, rows: UInt64) throws {
        let file = H5Fcreate(path, swift_H5F_ACC_TRUNC(), swift_H5P_DEFAULT(), swift_H5P_DEFAULT())
        #expect(file >= 0)
        defer { H5Fclose(file) }
        for (key, width) in [("observations", 11), ("actions", 3), ("rewards", 0), ("terminals", 0)] {
            var dims: [hsize_t] = width > 0 ? [rows, hsize_t(width)] : [rows]
            var maxDims = dims.map { _ in swift_H5S_UNLIMITED() }
            let space = H5Screate_simple(Int32(dims.count), &dims, &maxDims)
            let plist = H5Pcreate(swift_H5P_DATASET_CREATE())
            var chunk: [hsize_t] = width > 0 ? [1024, hsize_t(width)] : [1024]
            H5Pset_chunk(plist, Int32(chunk.count), &chunk)
            let dataset = H5Dcreate2(
                file, key, swift_H5T_NATIVE_FLOAT(), space, swift_H5P_DEFAULT(), plist, swift_H5P_DEFAULT())
            #expect(dataset >= 0)
            H5Dclose(dataset)
            H5Pclose(plist)
            H5Sclose(space)
        }
    }

    @Test func aHollowTerabyteFileIsRefusedBeforeAllocation() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("hollow.hdf5")
        try Self.writeHollowFile(path, rows: 1_000_000_000_000)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size < 100_000, "the file itself is small (\(size) bytes)")
        do {
            _ = try D4RLDataset(file: path)
            Issue.record("a file declaring 10¹² rows loaded")
        } catch let error as D4RLError {
            #expect(error.kind == .tooLarge && error.key == "observations", "\(error)")
            #expect(error.description.contains(path) && error.description.contains("declares 1000000000000 rows"), "\(error)")
        }
        // The HDF5 layer refuses the read itself, too.
        let file = try HDF5File.open(path)
        #expect(throws: HDF5Error.self) { try file.dataset("rewards").readArray(as: Float.self) }
        // A shape that does not fit an Int at all is refused when the dataset is opened.
        let huge = scratch.path("huge.hdf5")
        try Self.writeHollowFile(huge, rows: UInt64(Int.max) / 2)
        #expect(throws: HDF5Error.self) { try HDF5File.open(huge).dataset("observations") }
    }

    /// A 4 KB file declaring 2·10⁸ steps (less than this machine's memory, so no memory bound
    /// stops it) is refused from what it declares against what it stores, before anything is
    /// allocated; through the probe too, whose child would otherwise read gigabytes of fill.
    @Test func aFileDeclaringMoreThanItStoresIsRefusedAtOnce() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("hollow-2e8.hdf5")
        try Self.writeHollowFile(path, rows: 200_000_000)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size < 100_000, "the file itself is small (\(size) bytes)")
        do {
            _ = try D4RLDataset(file: path)
            Issue.record("a file declaring 2·10⁸ unstored rows loaded")
        } catch let error as D4RLError {
            #expect(error.kind == .tooLarge && error.description.contains("stores only"), "\(error)")
        }
        let file = try HDF5File.open(path)
        let observations = try file.dataset("observations")
        #expect(observations.storedBytes == 0)
        #expect(observations.declaredSizeProblem(rows: observations.rowCount)?.contains("truncated or forged") == true)
    }

    /// A NaN among float flags is an error naming the row, not a silent `true`.
    @Test func aNaNFlagIsNamed() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("nan-flag.hdf5")
        var spec = SyntheticD4RLFile()
        spec.flagType = .float32
        spec.nanTerminalAt = 4
        try spec.write(to: path)
        do {
            _ = try D4RLDataset(file: path)
            Issue.record("a NaN terminal was read as a flag")
        } catch let error as D4RLError {
            #expect(error.key == "terminals" && error.description.contains("row 4"), "\(error)")
        }
    }
}

/// A group linked into itself (found by fuzzing): listing the file stops at a depth limit with
/// a typed error instead of recursing until the stack runs out.
@Suite struct GroupCycleTests {
    @Test func aGroupLinkedIntoItselfIsRefused() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/group-cycle.hdf5").path
        let file = try HDF5File.open(path)
        do {
            _ = try file.entries()
            Issue.record("an endless tree was listed")
        } catch let error as HDF5Error {
            #expect(error.description.contains("nest more than 32 deep"), "\(error)")
        }
    }
}
