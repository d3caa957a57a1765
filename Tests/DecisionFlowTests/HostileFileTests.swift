import Foundation
import Testing

import DecisionFlowSupport
import TestSupport
@testable import DecisionFlow
@testable import DecisionFlowCheckpoints

/// Files as a stranger may hand them over (issue #10, classes 1 and 2): each is refused with
/// the error type that names the file, and nothing traps or is silently accepted.
@Suite struct HostileFileTests {
    /// A safetensors file from a header text and data bytes.
    static func safetensors(header: String, body: [UInt8] = []) -> Data {
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: body)
        return data
    }

    static func refusal(_ data: Data) -> String? {
        do {
            _ = try Safetensors.parse(data, file: "forged.safetensors")
            return nil
        } catch let error as SafetensorsError {
            return error.description
        } catch {
            return "wrong error type: \(error)"
        }
    }

    @Test func forgedSizesAreRefusedBeforeAllocation() {
        let cases: [(String, [UInt8], String)] = [
            // Shape whose product overflows an Int.
            (#"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}}"#, [], "too large"),
            // A negative dimension, offsets reversed to match.
            (#"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [4, 0]}}"#, [0, 0, 0, 0], "negative"),
            // A range past the data.
            (#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, [0, 0, 0, 0], "does not fit"),
            // Two tensors over the same bytes.
            (
                #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#,
                [0, 0, 0, 0], "overlaps"
            ),
            // Bytes no tensor accounts for.
            (#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, [0, 0, 0, 0, 9, 9, 9, 9], "after its last"),
            // The same name twice: a JSON parser would keep one silently.
            (
                #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#,
                [0, 0, 0, 0, 0, 0, 0, 0], "twice"
            ),
            // Metadata that is not strings.
            (#"{"__metadata__": {"format": 1}}"#, [], "map of strings"),
        ]
        for (header, body, expected) in cases {
            let message = Self.refusal(Self.safetensors(header: header, body: body))
            #expect(message?.contains(expected) == true, "\(header): \(message ?? "accepted")")
            #expect(message?.contains("forged.safetensors") == true)
        }
        // A header length larger than the file (or than the format allows).
        var huge = Data()
        withUnsafeBytes(of: UInt64(1 << 62).littleEndian) { huge.append(contentsOf: $0) }
        #expect(Self.refusal(huge)?.contains("header") == true)
    }

    /// A checkpoint whose header names a model far beyond the limits is refused by its
    /// configuration check, whether its checksum is valid (current format) or not consulted
    /// before the configuration (DecisionFlow 0.1's format).
    @Test(arguments: ["decisionflow-checkpoint/2", "decisionflow-checkpoint/1"])
    func absurdConfigurationsAreRefused(format: String) throws {
        let scratch = try ScratchDirectory()
        for (field, value) in [("maxEpisodeLength", "1000000000000"), ("contextLength", "1000000000"), ("embeddingDimension", "1099511627776")] {
            var configuration = try JSONSerialization.jsonObject(
                with: JSONEncoder.sorted.encode(ModelConfiguration(stateDimension: 3, actionDimension: 2)))
                as! [String: Any]
            configuration[field] = Int(value)!
            let configurationJSON = String(
                decoding: try JSONSerialization.data(withJSONObject: configuration, options: [.sortedKeys]), as: UTF8.self)
            var metadata = ["format": format, "configuration": configurationJSON]
            var checksum = FNV1a64()
            checksum.add(metadata: metadata)
            metadata["checksum"] = checksum.hex
            let path = scratch.path("\(field).safetensors")
            try Safetensors.serialize([], metadata: metadata).write(to: URL(fileURLWithPath: path))
            do {
                _ = try Checkpoint.read(path)
                Issue.record("\(field) \(value) was accepted")
            } catch let error as CheckpointError {
                #expect(error.problem.contains("\(field) must be at most"), "\(error)")
            }
        }
    }

    /// The checksum covers the header: a one-digit change in the policy's state scale is
    /// caught, as is a tensor the configuration has no place for.
    @Test func editedHeadersAndExtraTensorsAreCaught() throws {
        let scratch = try ScratchDirectory()
        let (model, _) = smallModelAndBatch()
        let encoding = ContextEncoding(
            stateMean: [0, 0, 0, 0, 0], stateScale: [1.5, 1, 1, 1, 1], rewardScale: 1000, for: model.configuration)
        let path = scratch.path("model.safetensors")
        try Checkpoint(model: model, encoding: encoding, environment: "hopper").write(to: path)
        #expect(try Checkpoint.read(path).notes.isEmpty)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let text = try #require(String(data: bytes, encoding: .isoLatin1))
        let digit = try #require(text.range(of: "1.5"))
        let offset = text.distance(from: text.startIndex, to: digit.lowerBound)
        bytes[offset] = UInt8(ascii: "2")  // 1.5 → 2.5: same length, still valid JSON
        try bytes.write(to: URL(fileURLWithPath: path))
        do {
            _ = try Checkpoint.read(path)
            Issue.record("an edited state scale was accepted")
        } catch let error as CheckpointError {
            #expect(error.problem.contains("fails its checksum"), "\(error)")
        }

        // An extra tensor, in a file whose checksum is otherwise right.
        let layout = ParameterLayout(configuration: model.configuration)
        let weights = model.parameterValues
        let extra: [Float] = [7]
        var metadata = [
            "format": Checkpoint.format,
            "configuration": String(decoding: try JSONEncoder.sorted.encode(model.configuration), as: UTF8.self),
        ]
        let data = try weights.withUnsafeBufferPointer { w in
            try extra.withUnsafeBufferPointer { e in
                var tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = layout.entries.map {
                    ($0.name, $0.shape, UnsafeBufferPointer(rebasing: w[$0.range]))
                }
                tensors.append(("zz.smuggled", [1], e))
                var checksum = FNV1a64()
                checksum.add(metadata: metadata)
                for tensor in tensors { checksum.add(UnsafeRawBufferPointer(tensor.values)) }
                metadata["checksum"] = checksum.hex
                return try Safetensors.serialize(tensors, metadata: metadata)
            }
        }
        try data.write(to: URL(fileURLWithPath: scratch.path("extra.safetensors")))
        do {
            _ = try Checkpoint.read(scratch.path("extra.safetensors"))
            Issue.record("an extra tensor was accepted")
        } catch let error as CheckpointError {
            #expect(error.problem.contains("zz.smuggled"), "\(error)")
        }
    }

    /// A model that would not fit in memory is refused before anything is allocated.
    @Test func modelsLargerThanMemoryAreRefused() throws {
        let big = ModelConfiguration(
            stateDimension: 11, actionDimension: 3, contextLength: 1_000, embeddingDimension: 4_096, layerCount: 64,
            maxEpisodeLength: 1_000)
        #expect(big.problems.isEmpty)
        #expect(big.memoryProblem(batchCapacity: 1_000)?.contains("more than this machine's") == true)
        #expect(ModelConfiguration(stateDimension: 11, actionDimension: 3).memoryProblem(batchCapacity: 64) == nil)
        // Sizes whose products overflow give no estimate rather than a trap.
        let wide = ModelConfiguration(
            stateDimension: 11, actionDimension: 3, contextLength: 10_000_000, embeddingDimension: 65_536,
            layerCount: 1_024, maxEpisodeLength: 10_000_000, attention: .softmax)
        #expect(wide.estimatedBytes(batchCapacity: 1 << 20) == nil)
        #expect(wide.memoryProblem(batchCapacity: 1 << 20) != nil)
    }
}
