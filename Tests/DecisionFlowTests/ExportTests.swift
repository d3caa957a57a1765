import Foundation
import Testing

import TestSupport
@testable import DecisionFlow
@testable import DecisionFlowCheckpoints

/// `export` writes what the reference PyTorch model loads, and `import` reads it back bit for bit.
@Suite struct ExportTests {
    static func checkpoint(_ attention: AttentionKind, seed: UInt64) -> Checkpoint {
        let configuration = ModelConfiguration(
            stateDimension: 5, actionDimension: 2, contextLength: 4, embeddingDimension: 16, layerCount: 2, headCount: 2,
            activation: .gelu, dropout: 0.05, maxEpisodeLength: 50, attention: attention)
        let model = DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: seed, threads: 1)
        let encoding = ContextEncoding(
            stateMean: [0.5, -1, 2, 0, 3.25], stateScale: [1, 2, 0.5, 4, 1e-6 + 1], rewardScale: 500, for: configuration)
        var optimizer = AdamW(layout: model.layout)
        optimizer.update(model, learningRate: 0)  // moments exist, so the checkpoint carries optimizer tensors
        return Checkpoint(model: model, optimizer: optimizer, encoding: encoding, environment: "hopper")
    }

    @Test(arguments: [AttentionKind.flow, .softmax])
    func exportThenImportReproducesTheWeightsBitForBit(attention: AttentionKind) throws {
        let scratch = try ScratchDirectory()
        let original = Self.checkpoint(attention, seed: 21)
        let paths = try original.export(to: scratch.path("export"), source: "original")
        let imported = try Checkpoint.importing(stateDictionary: paths.stateDictionary, description: paths.description)
        #expect(imported.parameters.map(\.bitPattern) == original.parameters.map(\.bitPattern))
        #expect(imported.configuration == original.configuration)
        #expect(imported.encoding == original.encoding)
        #expect(imported.environment == "hopper")
    }

    @Test func theStateDictIsPureAndCarriesGPT2sBuffers() throws {
        let original = Self.checkpoint(.softmax, seed: 3)
        let contents = try Safetensors.parse(try original.exportedStateDictionary(), file: "model.safetensors")
        #expect(contents.metadata == ["format": "pt"])
        #expect(!contents.tensors.keys.contains { $0.hasPrefix("optimizer.") })
        let layout = ParameterLayout(configuration: original.configuration)
        let buffers = contents.tensors.keys.filter { $0.hasSuffix(".attn.bias") || $0.hasSuffix(".attn.masked_bias") }
        #expect(Set(contents.tensors.keys).subtracting(buffers) == Set(layout.entries.map(\.name)))
        #expect(buffers.count == 2 * original.configuration.layerCount)
        let mask = try #require(contents.tensors["transformer.h.1.attn.bias"])
        #expect(mask.dtype == .uint8)
        #expect(mask.shape == [1, 1, 1024, 1024])
        let bits = try #require(mask.integers)
        let corner: [Int] = [bits[0], bits[1], bits[1024], bits[1025], bits[1026]]
        #expect(corner == [1, 0, 1, 1, 0])
        let ones: Int = bits.reduce(0, +)
        #expect(ones == 524_800, "lower-triangular: 1024 · 1025 / 2 ones")
        let fill = try #require(contents.tensors["transformer.h.0.attn.masked_bias"])
        #expect(fill.shape == [] && fill.values == [-1e4])
        // Flow models have no buffers.
        let flow = try Safetensors.parse(try Self.checkpoint(.flow, seed: 3).exportedStateDictionary(), file: "flow")
        #expect(!flow.tensors.keys.contains { $0.contains("attn.bias") })
    }

    @Test func theDescriptionUsesTheReferenceNames() throws {
        let scratch = try ScratchDirectory()
        let paths = try Self.checkpoint(.softmax, seed: 4).export(to: scratch.path("e"), source: "c")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: paths.description))) as? [String: Any])
        let integers: [String: Int] = [
            "state_dim": 5, "act_dim": 2, "hidden_size": 16, "n_layer": 2, "n_head": 2, "n_inner": 64, "max_length": 4,
            "max_ep_len": 50, "n_positions": 1024, "scale": 500,
        ]
        for (key, value) in integers { #expect(json[key] as? Int == value, "\(key)") }
        let strings = ["activation_function": "gelu_new", "attention": "softmax", "env": "hopper"]
        for (key, value) in strings { #expect(json[key] as? String == value, "\(key)") }
        #expect((json["state_std"] as? [Double])?.count == 5)
    }

    @Test func aCheckpointWithoutStatisticsIsRefusedByName() throws {
        let scratch = try ScratchDirectory()
        var bare = Self.checkpoint(.flow, seed: 5)
        bare.encoding = nil
        let error = #expect(throws: CheckpointError.self) { try bare.export(to: scratch.path("e"), source: "bare.safetensors") }
        #expect(error?.file == "bare.safetensors" && error?.problem.contains("state statistics") == true)
        #expect(!FileManager.default.fileExists(atPath: scratch.path("e")), "nothing written")
    }

    @Test func tensorsKeepTheirBytesAndDecodeOnAccess() throws {
        // Parsing slices the data section; values are converted only when asked for.
        let data = try Safetensors.serialize(
            raw: [("a", .float32, [2], [0, 0, 128, 63, 0, 0, 0, 64]), ("b", .bfloat16, [1], [0x80, 0x3F])], metadata: [:])
        let contents = try Safetensors.parse(data, file: "x")
        #expect(contents.tensors["a"]?.bytes.count == 8 && contents.tensors["b"]?.bytes.count == 2)
        #expect(contents.tensors["a"]?.values == [1, 2] && contents.tensors["b"]?.values == [1])
    }
}
