import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowSupport
import Foundation
import TestSupport
import Testing

/// An exported ONNX model read back with a wire-format reader: the graph's inputs, output,
/// opset and initializers, and that every node reads only what exists before it.
@Suite struct ONNXExportTests {
    /// The parts of a ModelProto the checks need (onnx.proto's field numbers).
    struct ReadModel {
        var irVersion: UInt64?
        var opsets: [(domain: String, version: UInt64)] = []
        var inputs: [(name: String, elementType: UInt64, dims: [String])] = []
        var outputs: [(name: String, elementType: UInt64, dims: [String])] = []
        var initializers: [String: (dims: [Int], dataType: UInt64, raw: Data)] = [:]
        var nodes: [(op: String, inputs: [String], outputs: [String])] = []

        init(_ data: Data) throws {
            func text(_ value: ProtobufReader.Value) -> String {
                if case .bytes(let bytes) = value { return String(decoding: bytes, as: UTF8.self) }
                return ""
            }
            func message(_ value: ProtobufReader.Value) throws -> [(field: Int, value: ProtobufReader.Value)] {
                guard case .bytes(let bytes) = value else { return [] }
                return try ProtobufReader.fields(of: bytes)
            }
            func number(_ value: ProtobufReader.Value) -> UInt64 {
                if case .varint(let n) = value { return n }
                return .max
            }
            func valueInfo(_ value: ProtobufReader.Value) throws -> (String, UInt64, [String]) {
                var name = ""
                var type: UInt64 = 0
                var dims: [String] = []
                for field in try message(value) {
                    if field.field == 1 { name = text(field.value) }
                    guard field.field == 2 else { continue }
                    for tensorType in try message(field.value) where tensorType.field == 1 {
                        for part in try message(tensorType.value) {
                            if part.field == 1 { type = number(part.value) }
                            if part.field == 2 {
                                for dim in try message(part.value) where dim.field == 1 {
                                    for d in try message(dim.value) {
                                        dims.append(d.field == 1 ? String(number(d.value)) : text(d.value))
                                    }
                                }
                            }
                        }
                    }
                }
                return (name, type, dims)
            }
            for field in try ProtobufReader.fields(of: data) {
                switch field.field {
                case 1: irVersion = number(field.value)
                case 8:
                    let parts = try message(field.value)
                    opsets.append(
                        (
                            parts.first { $0.field == 1 }.map { text($0.value) } ?? "",
                            parts.first { $0.field == 2 }.map { number($0.value) } ?? 0
                        ))
                case 7:
                    for part in try message(field.value) {
                        switch part.field {
                        case 1:
                            let node = try message(part.value)
                            nodes.append(
                                (
                                    node.first { $0.field == 4 }.map { text($0.value) } ?? "",
                                    node.filter { $0.field == 1 }.map { text($0.value) },
                                    node.filter { $0.field == 2 }.map { text($0.value) }
                                ))
                        case 5:
                            let tensor = try message(part.value)
                            let name = tensor.first { $0.field == 8 }.map { text($0.value) } ?? ""
                            var raw = Data()
                            if case .bytes(let bytes)? = tensor.first(where: { $0.field == 9 })?.value { raw = bytes }
                            initializers[name] = (
                                tensor.filter { $0.field == 1 }.map { Int(number($0.value)) },
                                tensor.first { $0.field == 2 }.map { number($0.value) } ?? 0, raw
                            )
                        case 11: inputs.append(try valueInfo(part.value))
                        case 12: outputs.append(try valueInfo(part.value))
                        default: break
                        }
                    }
                default: break
                }
            }
        }
    }

    @Test(arguments: [AttentionKind.flow, .softmax])
    func theExportedGraphHasTheModelsInputsOutputsAndWeights(attention: AttentionKind) throws {
        let scratch = try ScratchDirectory()
        let configuration = ModelConfiguration(
            stateDimension: 11, actionDimension: 3, contextLength: 5, embeddingDimension: 16, layerCount: 2,
            headCount: 2, activation: attention == .flow ? .relu : .gelu, maxEpisodeLength: 100, attention: attention)
        let model = DecisionTransformer(configuration: configuration, batchCapacity: 1, seed: 7)
        let checkpoint = Checkpoint(model: model)
        let path = scratch.path("policy.onnx")
        try checkpoint.exportONNX(to: path, source: scratch.path("policy.safetensors"))
        let read = try ReadModel(Data(contentsOf: URL(fileURLWithPath: path)))

        #expect(read.irVersion == 8)
        #expect(read.opsets.count == 1 && read.opsets[0].domain == "" && read.opsets[0].version == 17)
        #expect(read.inputs.map(\.name) == ONNXExport.inputNames)
        #expect(read.inputs.map(\.elementType) == [1, 1, 1, 7, 1], "float, and int64 timesteps")
        #expect(read.inputs.map(\.dims) == [["batch", "5", "11"], ["batch", "5", "3"], ["batch", "5", "1"], ["batch", "5"], ["batch", "5"]])
        #expect(read.outputs.map(\.name) == ["action_preds"] && read.outputs.first?.dims == ["batch", "5", "3"])

        // Every weight the action prediction uses, under the reference's name, with its shape
        // and exactly its values; the other heads and GPT-2's unused token embedding stay out.
        let unused = ["predict_state.", "predict_return.", "transformer.wte."]
        for entry in model.layout.entries {
            if unused.contains(where: entry.name.hasPrefix) {
                #expect(read.initializers[entry.name] == nil, "\(entry.name) is not used")
                continue
            }
            let initializer = try #require(read.initializers[entry.name], "initializer \(entry.name)")
            #expect(initializer.dims == entry.shape && initializer.dataType == 1, "\(entry.name)")
            let values = checkpoint.parameters[entry.range].withUnsafeBytes { Data($0) }
            #expect(initializer.raw == values, "\(entry.name) holds the checkpoint's values")
        }
        // Every node reads a graph input, an initializer or an earlier node's output, and the
        // graph's output is produced; only standard operators appear.
        var known = Set(ONNXExport.inputNames).union(read.initializers.keys)
        let standard: Set<String> = [
            "Add", "Sub", "Mul", "Div", "MatMul", "Transpose", "Reshape", "Concat", "Unsqueeze", "Gather", "Clip",
            "LayerNormalization", "Softmax", "Split", "Sigmoid", "CumSum", "ReduceSum", "Exp", "Relu", "Tanh", "Identity",
        ]
        for node in read.nodes {
            #expect(standard.contains(node.op), "operator \(node.op)")
            for input in node.inputs { #expect(known.contains(input), "\(node.op) reads \(input) before it exists") }
            known.formUnion(node.outputs)
        }
        #expect(known.contains("action_preds"))
        #expect(read.nodes.contains { $0.op == (attention == .flow ? "CumSum" : "Softmax") })
    }

    /// Writing the model follows export's rule: nothing the user had is lost.
    @Test func theExportLosesNothing() throws {
        let scratch = try ScratchDirectory()
        let model = DecisionTransformer(
            configuration: ModelConfiguration(stateDimension: 3, actionDimension: 2, contextLength: 2, embeddingDimension: 8, layerCount: 1),
            batchCapacity: 1, seed: 1)
        let checkpoint = Checkpoint(model: model)
        let source = scratch.path("policy.safetensors")
        try checkpoint.write(to: source)
        let before = try Data(contentsOf: URL(fileURLWithPath: source))
        #expect(throws: RefusedOverwrite.self) { try checkpoint.exportONNX(to: source, source: source, force: true) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: source)) == before)

        let existing = scratch.path("mine.onnx")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: existing))
        #expect(throws: RefusedOverwrite.self) { try checkpoint.exportONNX(to: existing, source: source) }
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep me")
        try checkpoint.exportONNX(to: existing, source: source, force: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: existing)) == ONNXExport.model(of: checkpoint))

        let link = scratch.path("link.onnx")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: existing)
        #expect(throws: RefusedOverwrite.self) { try checkpoint.exportONNX(to: link, source: source, force: true) }
    }

    /// The reader refuses a message that claims more bytes than it has, instead of trapping.
    @Test func aTruncatedMessageIsAnError() throws {
        var writer = ProtobufWriter()
        writer.string(1, "hello")
        #expect(try ProtobufReader.fields(of: writer.data).first?.value == .bytes(Data("hello".utf8)))
        #expect(throws: ProtobufReader.FormatError.self) { try ProtobufReader.fields(of: writer.data.dropLast(2)) }
        #expect(throws: ProtobufReader.FormatError.self) { try ProtobufReader.fields(of: Data([0xFF, 0xFF])) }
    }
}
