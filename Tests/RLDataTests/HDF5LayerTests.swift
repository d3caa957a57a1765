import Foundation
import RLData
import TestSupport
import Testing

/// The Swift HDF5 layer: round trips of every element type, partial reads, strings,
/// attributes and typed errors.
@Suite struct HDF5LayerTests {
    @Test func numericRoundTripWithConversion() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("numbers.h5")
        let values: [Double] = [0, 1.5, -2.25, 3, 4, 5]
        do {
            let file = try HDF5File.create(path)
            for (name, type) in [
                ("f32", HDF5StorageType.float32), ("f64", .float64), ("i8", .int8), ("i64", .int64), ("u8", .uint8),
            ] {
                let stored = type == .uint8 ? values.map { abs($0) } : values
                try file.write(stored, to: "group/\(name)", type: type, shape: [3, 2])
            }
            try file.write([true, false, true], to: "flags")
            try file.writeScalar(Int64(42), to: "meta/answer", type: .int64)
            try file.writeScalar(0.125, to: "meta/ratio", type: .float64)
            try file.writeString("Hopper-v4 ✓", to: "meta/env")
            try file.setAttribute("note", to: "written by a test", on: "group")
        }
        let file = try HDF5File.open(path)
        #expect(try file.dataset("group/f32").readArray(as: Double.self) == values)
        #expect(try file.dataset("group/f64").readArray(as: Float.self) == values.map { Float($0) })
        // Integer storage truncates toward zero, as NumPy's astype does.
        #expect(try file.dataset("group/i8").readArray(as: Int.self) == [0, 1, -2, 3, 4, 5])
        #expect(try file.dataset("group/i64").readArray(as: Double.self) == [0, 1, -2, 3, 4, 5])
        #expect(try file.dataset("group/u8").readArray(as: UInt8.self) == [0, 1, 2, 3, 4, 5])
        #expect(try file.dataset("group/f32").elementType == .float(bits: 32))
        #expect(try file.dataset("group/i8").elementType == .integer(bits: 8, signed: true))
        #expect(try file.dataset("group/u8").elementType == .integer(bits: 8, signed: false))
        #expect(try file.dataset("flags").elementType == .boolean)
        #expect(try file.dataset("flags").readBooleans() == [true, false, true])
        #expect(try file.dataset("flags").readArray(as: Float.self) == [1, 0, 1])
        #expect(try file.dataset("meta/answer").readScalar(as: Int64.self) == 42)
        #expect(try file.dataset("meta/answer").shape == [])
        #expect(try file.dataset("meta/ratio").readScalar(as: Float.self) == 0.125)
        #expect(try file.dataset("meta/env").readString() == "Hopper-v4 ✓")
        #expect(try file.attributeNames(of: "group") == ["note"])
        #expect(try file.attribute("note", of: "group").readString() == "written by a test")
        #expect(try file.memberNames(of: "") == ["flags", "group", "meta"])
    }

    /// Reading does not take libhdf5's file lock. A child process started while a file is
    /// open for writing inherits the descriptor, and the lock on it, until it closes it; a
    /// read at that moment failed with "unable to lock file, errno = 11" (seen as a rare
    /// failure of the suite, whose tests start processes while others write files). The
    /// inherited lock is played here by an exclusive flock of our own on the finished file.
    @Test func aFileStaysReadableWhileSomeoneElseHoldsALockOnIt() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("written.h5")
        do {
            let file = try HDF5File.create(path)
            try file.write([1.0, 2.0], to: "values", type: .float64, shape: [2])
        }
        let holder = open(path, O_RDONLY)
        #expect(holder >= 0)
        defer { close(holder) }
        #expect(flock(holder, LOCK_EX | LOCK_NB) == 0)
        #expect(try HDF5File.open(path).dataset("values").readArray(as: Double.self) == [1, 2])
    }

    @Test func rowRangesReadOnlyThoseRows() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("rows.h5")
        let values = (0..<(1000 * 4)).map { Float($0) }
        do {
            let file = try HDF5File.create(path)
            try file.write(
                values, to: "matrix", type: .float32, shape: [1000, 4],
                layout: HDF5DatasetLayout(chunkRows: 64, gzipLevel: 6, shuffle: true, extendable: false))
        }
        let dataset = try HDF5File.open(path).dataset("matrix")
        #expect(dataset.chunkShape == [64, 4])
        #expect(dataset.filters == [.shuffle, .deflate(level: 6)])
        for rows in [0..<1, 63..<65, 500..<777, 999..<1000, 10..<10] {
            #expect(
                try dataset.readRows(rows, as: Float.self)
                    == Array(values[(rows.lowerBound * 4)..<(rows.upperBound * 4)]))
        }
        #expect(throws: HDF5Error.self) { try dataset.readRows(990..<1001, as: Float.self) }
    }

    @Test func appendingGrowsAnExtendableDataset() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("grow.h5")
        do {
            let file = try HDF5File.create(path)
            let dataset = try file.createDataset(
                "x", type: .float32, shape: [0, 2],
                layout: HDF5DatasetLayout(chunkRows: 3, gzipLevel: 1, shuffle: false, extendable: true))
            for batch in 0..<4 {
                let rows = (0..<(2 * (batch + 1))).map { Float(batch * 100 + $0) }
                try rows.withUnsafeBufferPointer { try dataset.appendRows($0) }
            }
            #expect(dataset.shape == [10, 2])
        }
        let read = try HDF5File.open(path).dataset("x").readArray(as: Float.self)
        #expect(read.count == 20)
        #expect(Array(read.prefix(6)) == [0, 1, 100, 101, 102, 103])
    }

    @Test func errorsNameTheOperationFileAndObject() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("e.h5")
        do { try HDF5File.create(path).writeScalar(1.0, to: "x", type: .float64) }
        let file = try HDF5File.open(path)
        do {
            _ = try file.dataset("missing/key")
            Issue.record("opened a missing dataset")
        } catch let error as HDF5Error {
            #expect(error.file == path)
            #expect(error.objectPath == "missing/key")
            #expect(error.description.contains("missing/key"))
        }
        #expect(file.contains("x"))
        #expect(!file.contains("missing/key"))
        #expect(file.kind(of: "x") == .dataset)
        #expect(file.kind(of: "nope") == nil)
        // Reading a string as numbers (and the reverse) is a typed error, not garbage.
        #expect(throws: HDF5Error.self) { try file.dataset("x").readString() }
        // Writing to a read-only file is refused before HDF5 is asked.
        #expect(throws: HDF5Error.self) { try file.writeScalar(2.0, to: "y", type: .float64) }

        let garbage = scratch.path("garbage.h5")
        try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: garbage))
        do {
            _ = try HDF5File.open(garbage)
            Issue.record("opened garbage")
        } catch let error as HDF5Error {
            // HDF5's own error stack is captured, not printed.
            #expect(!error.stack.isEmpty)
            #expect(error.stack.joined().contains("signature"))
        }
    }

    @Test func readingFromManyThreadsAtOnce() async throws {
        let path = TestFiles.sharedDataset("hopper-random")
        let expected = try HDF5File.open(path).dataset("rewards").readArray(as: Float.self)
        try await withThrowingTaskGroup(of: [Float].self) { group in
            for _ in 0..<8 {
                group.addTask { try HDF5File.open(path).dataset("rewards").readArray(as: Float.self) }
            }
            for try await values in group { #expect(values == expected) }
        }
    }
}
