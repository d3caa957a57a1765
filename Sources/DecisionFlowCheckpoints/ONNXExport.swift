import DecisionFlow
import DecisionFlowSupport
import Foundation

/// A checkpoint's full-window forward pass as an ONNX model, for running a policy outside
/// Swift (onnxruntime in Python, C++, Rust, ...).
///
/// Inputs, with a dynamic batch B and the model's context length K:
/// - `states` (B, K, S), `actions` (B, K, A), `returns_to_go` (B, K, 1): float32, in the
///   model's units (states normalized, returns-to-go divided by the return scale, as
///   `ContextEncoding` writes a window);
/// - `timesteps` (B, K) int64, clamped to the timestep table as the encoding clamps them;
/// - `attention_mask` (B, K) float32, 1 for real steps and 0 for padding.
///
/// The output `action_preds` (B, K, A) is the action predicted at each state token, as
/// `DecisionTransformer` computes it. Flow-Attention is written with standard operators
/// (Sigmoid, CumSum, ReduceSum, Exp, Clip, MatMul under a causal mask); like the kernel it
/// ignores the attention mask, which only the softmax attention applies (GPT-2's −10⁴ on
/// padded keys). The weights it uses are initializers under the reference's names and shapes
/// (the state and return heads, which predict nothing the policy needs, are left out).
public enum ONNXExport {
    /// The ONNX operator set the graph uses (LayerNormalization needs 17).
    public static let opset: Int64 = 17
    /// The IR version that goes with opset 17.
    public static let irVersion: Int64 = 8
    /// The graph's inputs, in order.
    public static let inputNames = ["states", "actions", "returns_to_go", "timesteps", "attention_mask"]
    /// The graph's output.
    public static let outputName = "action_preds"

    /// The ONNX model of `checkpoint`, serialized.
    public static func model(of checkpoint: Checkpoint) -> Data {
        var graph = GraphBuilder(checkpoint: checkpoint)
        let output = graph.forward()
        return graph.serialize(output: output)
    }
}

/// Builds the graph node by node; every intermediate gets a fresh name.
private struct GraphBuilder {
    enum Attribute {
        case int(String, Int64)
        case ints(String, [Int64])
        case float(String, Float)
    }

    struct Node {
        var op: String
        var inputs: [String]
        var outputs: [String]
        var attributes: [Attribute]
    }

    struct Initializer {
        var name: String
        var dims: [Int]
        var floats: [Float]?
        var integers: [Int64]?
    }

    let configuration: ModelConfiguration
    let parameters: [Float]
    let layout: ParameterLayout
    var nodes: [Node] = []
    var initializers: [Initializer] = []
    var counter = 0

    init(checkpoint: Checkpoint) {
        configuration = checkpoint.configuration
        parameters = checkpoint.parameters
        layout = ParameterLayout(configuration: configuration)
        for entry in layout.entries {
            initializers.append(
                Initializer(name: entry.name, dims: entry.shape, floats: Array(parameters[entry.range]), integers: nil))
        }
    }

    // MARK: - Building blocks

    mutating func op(_ type: String, _ inputs: [String], _ attributes: [Attribute] = []) -> String {
        counter += 1
        let output = "\(type.lowercased())_\(counter)"
        nodes.append(Node(op: type, inputs: inputs, outputs: [output], attributes: attributes))
        return output
    }

    mutating func constant(_ values: [Float], dims: [Int]) -> String {
        counter += 1
        let name = "const_\(counter)"
        initializers.append(Initializer(name: name, dims: dims, floats: values, integers: nil))
        return name
    }

    mutating func integers(_ values: [Int64], dims: [Int]? = nil) -> String {
        counter += 1
        let name = "const_\(counter)"
        initializers.append(Initializer(name: name, dims: dims ?? [values.count], floats: nil, integers: values))
        return name
    }

    mutating func scalar(_ value: Float) -> String { constant([value], dims: []) }

    /// x·Wᵀ + b for a weight stored (out, in), as `nn.Linear` stores it.
    mutating func linearOutIn(_ x: String, _ weight: String, _ bias: String) -> String {
        let transposed = op("Transpose", [weight], [.ints("perm", [1, 0])])
        return op("Add", [op("MatMul", [x, transposed]), bias])
    }

    /// x·W + b for a weight stored (in, out), as GPT-2's `Conv1D` stores it.
    mutating func linearInOut(_ x: String, _ weight: String, _ bias: String) -> String {
        op("Add", [op("MatMul", [x, weight]), bias])
    }

    mutating func layerNorm(_ x: String, _ prefix: String) -> String {
        op(
            "LayerNormalization", [x, prefix + ".weight", prefix + ".bias"],
            [.int("axis", -1), .float("epsilon", configuration.layerNormEpsilon)])
    }

    mutating func reshape(_ x: String, _ shape: [Int64]) -> String { op("Reshape", [x, integers(shape)]) }

    // MARK: - The model

    mutating func forward() -> String {
        let c = configuration
        let (K, C, L) = (Int64(c.contextLength), Int64(c.embeddingDimension), Int64(3 * c.contextLength))
        // Token embeddings plus the timestep's row, stacked (R, s, a) per step.
        let timesteps = op(
            "Clip", ["timesteps", integers([0], dims: []), integers([Int64(c.maxEpisodeLength - 1)], dims: [])])
        let time = op("Gather", ["embed_timestep.weight", timesteps], [.int("axis", 0)])
        func embedded(_ builder: inout GraphBuilder, _ input: String, _ name: String) -> String {
            let linear = builder.linearOutIn(input, "embed_\(name).weight", "embed_\(name).bias")
            let sum = builder.op("Add", [linear, time])
            return builder.op("Unsqueeze", [sum, builder.integers([2])])
        }
        let tokens = [
            embedded(&self, "returns_to_go", "return"), embedded(&self, "states", "state"),
            embedded(&self, "actions", "action"),
        ]
        let stacked = reshape(op("Concat", tokens, [.int("axis", 2)]), [0, L, C])
        var x = layerNorm(stacked, "embed_ln")

        // Softmax's additive key mask, (B, 1, 1, L): −10⁴ on the tokens of padded steps.
        var keyBias: String? = nil
        if c.attention == .softmax {
            let m = op("Unsqueeze", ["attention_mask", integers([2])])
            let perToken = reshape(op("Concat", [m, m, m], [.int("axis", 2)]), [0, L])
            let padded = op("Sub", [scalar(1), perToken])
            keyBias = op("Unsqueeze", [op("Mul", [padded, scalar(-1e4)]), integers([1, 2])])
        }

        for layer in 0..<c.layerCount {
            let prefix = "transformer.h.\(layer)."
            let h = layerNorm(x, prefix + "ln_1")
            let attended: String
            switch c.attention {
            case .flow:
                let a = prefix + "attn.att."
                let q = heads(linearOutIn(h, a + "query_projection.weight", a + "query_projection.bias"))
                let k = heads(linearOutIn(h, a + "key_projection.weight", a + "key_projection.bias"))
                let v = heads(linearOutIn(h, a + "value_projection.weight", a + "value_projection.bias"))
                let merged = mergeHeads(flowAttention(q: q, k: k, v: v))
                attended = linearOutIn(merged, a + "out_projection.weight", a + "out_projection.bias")
            case .softmax:
                let qkv = linearInOut(h, prefix + "attn.c_attn.weight", prefix + "attn.c_attn.bias")
                let split = splitThree(qkv)
                let merged = mergeHeads(
                    softmaxAttention(q: heads(split.0), k: heads(split.1), v: heads(split.2), keyBias: keyBias!))
                attended = linearInOut(merged, prefix + "attn.c_proj.weight", prefix + "attn.c_proj.bias")
            }
            x = op("Add", [x, attended])
            let h2 = layerNorm(x, prefix + "ln_2")
            let hidden = activation(linearInOut(h2, prefix + "mlp.c_fc.weight", prefix + "mlp.c_fc.bias"))
            x = op("Add", [x, linearInOut(hidden, prefix + "mlp.c_proj.weight", prefix + "mlp.c_proj.bias")])
        }
        let final = layerNorm(x, "transformer.ln_f")
        // The state token of each step predicts the action.
        let stateTokens = op("Gather", [reshape(final, [0, K, 3, C]), integers([1], dims: [])], [.int("axis", 2)])
        let actions = linearOutIn(stateTokens, "predict_action.0.weight", "predict_action.0.bias")
        let output = c.actionTanh ? op("Tanh", [actions]) : actions
        nodes.append(Node(op: "Identity", inputs: [output], outputs: [ONNXExport.outputName], attributes: []))
        return ONNXExport.outputName
    }

    /// (B, L, C) → (B, H, L, C/H).
    mutating func heads(_ x: String) -> String {
        let c = configuration
        let split = reshape(x, [0, Int64(3 * c.contextLength), Int64(c.headCount), Int64(c.embeddingDimension / c.headCount)])
        return op("Transpose", [split], [.ints("perm", [0, 2, 1, 3])])
    }

    /// (B, H, L, D) → (B, L, H·D).
    mutating func mergeHeads(_ x: String) -> String {
        let c = configuration
        let transposed = op("Transpose", [x], [.ints("perm", [0, 2, 1, 3])])
        return reshape(transposed, [0, Int64(3 * c.contextLength), Int64(c.embeddingDimension)])
    }

    mutating func splitThree(_ x: String) -> (String, String, String) {
        let C = Int64(configuration.embeddingDimension)
        counter += 1
        let names = (0..<3).map { "split_\(counter)_\($0)" }
        nodes.append(Node(op: "Split", inputs: [x, integers([C, C, C])], outputs: names, attributes: [.int("axis", 2)]))
        return (names[0], names[1], names[2])
    }

    /// 1 on and below the diagonal, as (L, L) floats.
    mutating func causalOnes() -> String {
        let L = 3 * configuration.contextLength
        var values = [Float](repeating: 0, count: L * L)
        for i in 0..<L { for j in 0...i { values[i * L + j] = 1 } }
        return constant(values, dims: [L, L])
    }

    /// GPT-2's causal softmax attention of one block, (B, H, L, D) each.
    mutating func softmaxAttention(q: String, k: String, v: String, keyBias: String) -> String {
        let c = configuration
        let L = 3 * c.contextLength
        let D = c.embeddingDimension / c.headCount
        let keysT = op("Transpose", [k], [.ints("perm", [0, 1, 3, 2])])
        let scores = op("Mul", [op("MatMul", [q, keysT]), scalar(1 / Float(D).squareRoot())])
        // Keys after the query are out of reach: a bias that leaves exp at 0.
        var future = [Float](repeating: 0, count: L * L)
        for i in 0..<L { for j in (i + 1)..<L { future[i * L + j] = -1e30 } }
        let masked = op("Add", [op("Add", [scores, constant(future, dims: [L, L])]), keyBias])
        return op("MatMul", [op("Softmax", [masked], [.int("axis", -1)]), v])
    }

    /// Causal Flow-Attention of one block, (B, H, L, D) each, as the reference computes it.
    mutating func flowAttention(q rawQ: String, k rawK: String, v: String) -> String {
        let L = 3 * configuration.contextLength
        let eps = scalar(configuration.flowEpsilon)
        let normal = constant((1...L).map { Float($0) }, dims: [L, 1])  // i + 1, per position
        let axisL = integers([2], dims: [])
        let axisD = integers([3])
        let q = op("Sigmoid", [rawQ])
        let k = op("Sigmoid", [rawK])
        func cumsum(_ b: inout GraphBuilder, _ x: String) -> String { b.op("CumSum", [x, axisL]) }
        /// Σ_d (x_i + eps)(causal Σ_{j ≤ i} y_j + eps), (B, H, L, 1).
        func causalDot(_ b: inout GraphBuilder, _ x: String, _ y: String) -> String {
            let left = b.op("Add", [x, eps])
            let right = b.op("Add", [cumsum(&b, y), eps])
            return b.op("ReduceSum", [b.op("Mul", [left, right]), axisD], [.int("keepdims", 1)])
        }
        // (1) incoming and outgoing flow.
        let sinkIncoming = op("Div", [normal, causalDot(&self, q, k)])
        let sourceOutgoing = op("Div", [normal, causalDot(&self, k, q)])
        // (2) conservation refinement.
        let conservedSink = op("Div", [causalDot(&self, q, op("Mul", [k, sourceOutgoing])), normal])
        let conservedSource = op("Div", [causalDot(&self, k, op("Mul", [q, sinkIncoming])), normal])
        // (3) competition and allocation.
        let allocation = op("Sigmoid", [conservedSink])
        let expSource = op("Exp", [op("Clip", [conservedSource, scalar(-10), scalar(10)])])
        let competition = op("Mul", [op("Div", [expSource, cumsum(&self, expSource)]), normal])
        // (4) Σ_{j ≤ i} (q_i·si_i/n_i · k_j)(v_j·comp_j), then the allocation.
        let qs = op("Div", [op("Mul", [q, sinkIncoming]), normal])
        let vs = op("Mul", [v, competition])
        let keysT = op("Transpose", [k], [.ints("perm", [0, 1, 3, 2])])
        let scores = op("Mul", [op("MatMul", [qs, keysT]), causalOnes()])
        return op("Mul", [op("MatMul", [scores, vs]), allocation])
    }

    mutating func activation(_ x: String) -> String {
        switch configuration.activation {
        case .relu:
            return op("Relu", [x])
        case .gelu:
            // GPT-2's gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
            let cube = op("Mul", [x, op("Mul", [x, x])])
            let inner = op("Add", [x, op("Mul", [cube, scalar(0.044715)])])
            let tanh = op("Tanh", [op("Mul", [inner, scalar((2 / Float.pi).squareRoot())])])
            return op("Mul", [op("Mul", [x, scalar(0.5)]), op("Add", [tanh, scalar(1)])])
        }
    }

    // MARK: - Serialization (onnx.proto's field numbers)

    func serialize(output: String) -> Data {
        let c = configuration
        var model = ProtobufWriter()
        model.varint(1, ONNXExport.irVersion)  // ir_version
        model.string(2, "DecisionFlow")  // producer_name
        model.string(3, DecisionFlowVersion.current)  // producer_version
        model.message(7) { graph in  // graph
            for node in nodes {
                graph.message(1) { n in  // node
                    for input in node.inputs { n.string(1, input) }
                    for output in node.outputs { n.string(2, output) }
                    n.string(4, node.op)
                    for attribute in node.attributes {
                        n.message(5) { a in
                            switch attribute {
                            case .int(let name, let value):
                                a.string(1, name)
                                a.varint(3, value)
                                a.varint(20, 2)  // INT
                            case .ints(let name, let values):
                                a.string(1, name)
                                for value in values { a.varint(8, value) }
                                a.varint(20, 7)  // INTS
                            case .float(let name, let value):
                                a.string(1, name)
                                a.float(2, value)
                                a.varint(20, 1)  // FLOAT
                            }
                        }
                    }
                }
            }
            graph.string(2, "decision_transformer")
            // Only what a node reads: the state and return heads and GPT-2's unused token
            // embedding stay out (runtimes warn about unused initializers).
            let read = Set(nodes.flatMap(\.inputs))
            for initializer in initializers where read.contains(initializer.name) {
                graph.message(5) { t in  // initializer: TensorProto
                    for dim in initializer.dims { t.varint(1, Int64(dim)) }
                    if let floats = initializer.floats {
                        t.varint(2, 1)  // FLOAT
                        t.string(8, initializer.name)
                        t.bytes(9, floats.withUnsafeBufferPointer { Data(buffer: $0) })
                    } else if let integers = initializer.integers {
                        t.varint(2, 7)  // INT64
                        t.string(8, initializer.name)
                        t.bytes(9, integers.withUnsafeBufferPointer { Data(buffer: $0) })
                    }
                }
            }
            let (K, S, A) = (c.contextLength, c.stateDimension, c.actionDimension)
            let inputs: [(String, Int64, [Int])] = [
                ("states", 1, [K, S]), ("actions", 1, [K, A]), ("returns_to_go", 1, [K, 1]), ("timesteps", 7, [K]),
                ("attention_mask", 1, [K]),
            ]
            for (name, type, dims) in inputs { graph.message(11) { valueInfo(&$0, name, type, dims) } }
            graph.message(12) { valueInfo(&$0, output, 1, [K, A]) }
        }
        model.message(8) { opset in  // opset_import
            opset.string(1, "")
            opset.varint(2, ONNXExport.opset)
        }
        return model.data
    }

    /// A ValueInfoProto: `name`, element type `type`, shape (batch, dims...).
    private func valueInfo(_ info: inout ProtobufWriter, _ name: String, _ type: Int64, _ dims: [Int]) {
        info.string(1, name)
        info.message(2) { typeProto in
            typeProto.message(1) { tensor in
                tensor.varint(1, type)
                tensor.message(2) { shape in
                    shape.message(1) { $0.string(2, "batch") }
                    for dim in dims { shape.message(1) { $0.varint(1, Int64(dim)) } }
                }
            }
        }
    }
}

extension Checkpoint {
    /// Writes the ONNX model of this checkpoint (`ONNXExport`) to `path`, read from `source`,
    /// by `export(to:source:force:)`'s rule: the checkpoint itself is never replaced, a link
    /// is never written through, an existing file is replaced only with `force`, and the file
    /// appears whole or not at all.
    ///
    /// - Throws: `RefusedOverwrite` when one of those rules refuses; `FileWriteError` when
    ///   writing fails (anything there before is intact).
    public func exportONNX(to path: String, source: String, force: Bool = false) throws {
        try refuseReplacing(path, inputs: [source], force: force, choice: "--onnx path")
        try AtomicFile.write([(data: ONNXExport.model(of: self), path: path)])
    }
}
