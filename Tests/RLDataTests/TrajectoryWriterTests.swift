import CHDF5
import Foundation
import RLData
import TestSupport
import Testing

/// Recording with `TrajectoryWriter`, reading back, and checking the on-disk layout through
/// the raw C API (independently of the Swift layer that wrote it).
@Suite struct TrajectoryWriterTests {
    struct Step {
        var observation: [Float]
        var action: [Float]
        var reward: Float
        var terminal: Bool
        var timeout: Bool
        var next: [Float]
        var qpos: [Double]
        var qvel: [Double]
    }

    /// Three episodes (terminal, timeout, terminal) of a made-up 4-dim system.
    static func steps(count: Int) -> [Step] {
        (0..<count).map { t in
            let observation = (0..<4).map { Float(t) * 0.5 + Float($0) }
            return Step(
                observation: observation, action: [Float(sin(Double(t))), Float(cos(Double(t)))],
                reward: Float(t % 5) - 1, terminal: t == 9 || t == count - 1, timeout: t == 19,
                next: observation.map { $0 + 0.5 }, qpos: [Double(t), 1, 2], qvel: [-Double(t), 0])
        }
    }

    static func record(_ steps: [Step], to path: String, chunkRows: Int = 8) throws {
        let writer = try TrajectoryWriter(
            path: path,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: 4, actionDimension: 2, qposDimension: 3, qvelDimension: 2,
                chunkRows: chunkRows))
        for step in steps {
            try writer.append(
                observation: step.observation, action: step.action, reward: step.reward,
                terminal: step.terminal, timeout: step.timeout, nextObservation: step.next,
                qpos: step.qpos, qvel: step.qvel)
        }
        writer.setMetadata("behavior/env_id", .string("Toy-v0"))
        writer.setMetadata("episodes", .integer(3))
        writer.setMetadata("return_mean", .real(1.5))
        try writer.finish()
    }

    @Test func recordedFileReadsBackIdentically() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("toy.hdf5")
        let steps = Self.steps(count: 27)  // not a multiple of the chunk size
        try Self.record(steps, to: path)
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))

        let dataset = try D4RLDataset(file: path, options: D4RLLoadOptions(loadNextObservations: true))
        #expect(dataset.count == 27)
        #expect(dataset.observations == steps.flatMap(\.observation))
        #expect(dataset.actions == steps.flatMap(\.action))
        #expect(dataset.rewards == steps.map(\.reward))
        #expect(dataset.terminals == steps.map(\.terminal))
        #expect(dataset.timeouts == steps.map(\.timeout))
        #expect(dataset.nextObservations == steps.flatMap(\.next))
        #expect(dataset.trajectories.map(\.length) == [10, 10, 7])
        #expect(dataset.metadata.first?["behavior/env_id"] == .string("Toy-v0"))
        #expect(dataset.metadata.first?["episodes"] == .integer(3))
        #expect(dataset.metadata.first?["return_mean"] == .real(1.5))

        let file = try HDF5File.open(path)
        #expect(try file.dataset("infos/qpos").readArray(as: Double.self) == steps.flatMap(\.qpos))
        #expect(try file.dataset("infos/qvel").readArray(as: Double.self) == steps.flatMap(\.qvel))
    }

    /// The layout D4RL's files use, checked with libhdf5's C API directly.
    @Test func onDiskLayoutIsD4RLs() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("toy.hdf5")
        try Self.record(Self.steps(count: 27), to: path)

        let file = H5Fopen(path, swift_H5F_ACC_RDONLY(), swift_H5P_DEFAULT())
        #expect(file >= 0)
        defer { H5Fclose(file) }
        let expected: [(String, H5T_class_t, Int, [hsize_t])] = [
            ("observations", H5T_FLOAT, 4, [27, 4]), ("next_observations", H5T_FLOAT, 4, [27, 4]),
            ("actions", H5T_FLOAT, 4, [27, 2]), ("rewards", H5T_FLOAT, 4, [27]),
            ("terminals", H5T_ENUM, 1, [27]), ("timeouts", H5T_ENUM, 1, [27]),
            ("infos/qpos", H5T_FLOAT, 4, [27, 3]), ("infos/qvel", H5T_FLOAT, 4, [27, 2]),
        ]
        for (key, typeClass, size, dims) in expected {
            let dataset = H5Dopen2(file, key, swift_H5P_DEFAULT())
            #expect(dataset >= 0, "\(key)")
            defer { H5Dclose(dataset) }
            let type = H5Dget_type(dataset)
            defer { H5Tclose(type) }
            #expect(H5Tget_class(type) == typeClass, "\(key)")
            #expect(H5Tget_size(type) == size, "\(key)")
            #expect(H5Tget_order(type) == H5T_ORDER_LE || size == 1, "\(key)")
            if typeClass == H5T_ENUM {
                // h5py reads an int8 enum FALSE=0/TRUE=1 as numpy bool.
                var name = [CChar](repeating: 0, count: 16)
                var one: Int8 = 1
                #expect(H5Tenum_nameof(type, &one, &name, 16) >= 0)
                #expect(
                    String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) == "TRUE")
            }
            let space = H5Dget_space(dataset)
            defer { H5Sclose(space) }
            var actual = [hsize_t](repeating: 0, count: dims.count)
            #expect(Int(H5Sget_simple_extent_ndims(space)) == dims.count, "\(key)")
            H5Sget_simple_extent_dims(space, &actual, nil)
            #expect(actual == dims, "\(key)")

            let plist = H5Dget_create_plist(dataset)
            defer { H5Pclose(plist) }
            #expect(H5Pget_layout(plist) == H5D_CHUNKED, "\(key)")
            var filters: [H5Z_filter_t] = []
            for index in 0..<H5Pget_nfilters(plist) {
                var flags: UInt32 = 0
                var count = 0
                var config: UInt32 = 0
                filters.append(H5Pget_filter2(plist, UInt32(index), &flags, &count, nil, 0, nil, &config))
            }
            #expect(filters == [H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE], "\(key)")
        }
    }

    @Test func badStepsAreRefusedAndNothingIsRecorded() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("bad.hdf5")
        let writer = try TrajectoryWriter(
            path: path,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: 3, actionDimension: 1, recordsNextObservations: false))
        try writer.append(observation: [1, 2, 3], action: [0], reward: 1, terminal: false)
        #expect(throws: D4RLError.self) {
            try writer.append(observation: [1, 2], action: [0], reward: 1, terminal: false)
        }
        #expect(throws: D4RLError.self) {
            try writer.append(observation: [1, 2, .nan], action: [0], reward: 1, terminal: false)
        }
        #expect(throws: D4RLError.self) {
            try writer.append(observation: [1, 2, 3], action: [0], reward: .infinity, terminal: false)
        }
        try writer.append(observation: [4, 5, 6], action: [1], reward: 2, terminal: true)
        #expect(writer.stepCount == 2)
        try writer.finish()
        let dataset = try D4RLDataset(file: path)
        #expect(dataset.observations == [1, 2, 3, 4, 5, 6])
        #expect(dataset.rewards == [1, 2])
    }

    @Test func anAbandonedRecordingLeavesTheOldFileAlone() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("keep.hdf5")
        try Self.record(Self.steps(count: 12), to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let writer = try TrajectoryWriter(
            path: path,
            configuration: TrajectoryWriter.Configuration(
                observationDimension: 4, actionDimension: 2, recordsNextObservations: false))
        try writer.append(observation: [0, 0, 0, 0], action: [0, 0], reward: 0, terminal: true)
        // Until finish(), the recording lives beside the file, never over it.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        writer.abandon()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
    }

    @Test func writerToAMissingDirectoryFailsClearly() {
        #expect(throws: D4RLError.self) {
            try TrajectoryWriter(
                path: "/nonexistent/dir/x.hdf5",
                configuration: TrajectoryWriter.Configuration(observationDimension: 1, actionDimension: 1))
        }
    }
}
