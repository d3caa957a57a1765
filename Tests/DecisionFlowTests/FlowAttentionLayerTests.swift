import Testing
import TestSupport

@testable import DecisionFlow

/// The causal Flow-Attention layer alone (four projections around the kernel) against the
/// reference's `Flowformer_attention`: output, every parameter gradient, and the gradient
/// with respect to the input. The loss is Σ y · grad_output.
@Suite struct FlowAttentionLayerTests {
    @Test(arguments: ["flow_attention_layer", "flow_attention_layer_long", "flow_attention_layer_1500"])
    func layerMatchesReference(name: String) throws {
        let contents = try ReferenceFixtures.load(name)
        func tensor(_ key: String) throws -> [Float] { try #require(contents.tensors[key], "\(name) \(key)").values }
        let x = try #require(contents.tensors["input/x"])
        let (B, L, C) = (x.shape[0], x.shape[1], x.shape[2])
        let H = try #require(contents.metadata["n_head"].flatMap { Int($0) })
        let D = C / H
        let N = B * L
        // The model's layout: q, k, v weights stacked into one (3C, C) matrix, then their biases.
        let qkvWeight =
            try tensor("param/query_projection.weight") + tensor("param/key_projection.weight")
            + tensor("param/value_projection.weight")
        let qkvBias =
            try tensor("param/query_projection.bias") + tensor("param/key_projection.bias")
            + tensor("param/value_projection.bias")
        let outWeight = try tensor("param/out_projection.weight")
        let outBias = try tensor("param/out_projection.bias")
        let gradOutput = try tensor("input/grad_output")

        var qkv = [Float](repeating: 0, count: N * 3 * C)
        var attention = [Float](repeating: 0, count: N * C)
        var before = [Float](repeating: 0, count: N * C)
        let scratch = FlowAttentionScratch(L: L, D: D)
        let pairCache = FlowCache.count(L: L, D: D, chunk: scratch.chunk)
        var cache = [Float](repeating: 0, count: B * H * pairCache)
        var y = [Float](repeating: 0, count: N * C)
        var dAttention = [Float](repeating: 0, count: N * C)
        var dqkv = [Float](repeating: 0, count: N * 3 * C)
        var dx = [Float](repeating: 0, count: N * C)
        var dQKVWeight = [Float](repeating: 0, count: 3 * C * C)
        var dQKVBias = [Float](repeating: 0, count: 3 * C)
        var dOutWeight = [Float](repeating: 0, count: C * C)
        var dOutBias = [Float](repeating: 0, count: C)

        linearForward(
            out: &qkv, ldOut: 3 * C, inp: x.values, ldIn: C, weight: qkvWeight, bias: qkvBias, layout: .outIn, N: N,
            I: C, O: 3 * C)
        qkv.withUnsafeMutableBufferPointer { qkvBuffer in
            attention.withUnsafeMutableBufferPointer { attentionBuffer in
                before.withUnsafeMutableBufferPointer { beforeBuffer in
                    cache.withUnsafeMutableBufferPointer { cacheBuffer in
                        for b in 0..<B {
                            for h in 0..<H {
                                let q = qkvBuffer.baseAddress! + b * L * 3 * C + h * D
                                flowAttentionForward(
                                    y: attentionBuffer.baseAddress! + b * L * C + h * D, ldY: C,
                                    beforeAllocation: beforeBuffer.baseAddress! + b * L * C + h * D, ldB: C,
                                    cache: cacheBuffer.baseAddress! + (b * H + h) * pairCache, q: q, k: q + C,
                                    v: q + 2 * C, ldQKV: 3 * C, L: L, D: D, eps: 1e-6, scratch: scratch)
                            }
                        }
                    }
                }
            }
        }
        linearForward(
            out: &y, ldOut: C, inp: attention, ldIn: C, weight: outWeight, bias: outBias, layout: .outIn, N: N, I: C,
            O: C)
        expectClose(y, try tensor("output/y"), atol: 1e-5, rtol: 1e-4, "\(name) y")

        linearBackward(
            dinp: &dAttention, ldDinp: C, dweight: &dOutWeight, dbias: &dOutBias, dout: gradOutput, ldDout: C,
            inp: attention, ldIn: C, weight: outWeight, layout: .outIn, N: N, I: C, O: C)
        qkv.withUnsafeBufferPointer { qkvBuffer in
            dqkv.withUnsafeMutableBufferPointer { dqkvBuffer in
                dAttention.withUnsafeBufferPointer { dy in
                    before.withUnsafeBufferPointer { beforeBuffer in
                        cache.withUnsafeMutableBufferPointer { cacheBuffer in
                            for b in 0..<B {
                                for h in 0..<H {
                                    let head = b * L * 3 * C + h * D
                                    let q = qkvBuffer.baseAddress! + head
                                    let dq = dqkvBuffer.baseAddress! + head
                                    flowAttentionBackward(
                                        dq: dq, dk: dq + C, dv: dq + 2 * C, ldD: 3 * C,
                                        dy: dy.baseAddress! + b * L * C + h * D,
                                        ldY: C, beforeAllocation: beforeBuffer.baseAddress! + b * L * C + h * D, ldB: C,
                                        cache: cacheBuffer.baseAddress! + (b * H + h) * pairCache, q: q,
                                        k: q + C,
                                        v: q + 2 * C, ldQKV: 3 * C, L: L, D: D, eps: 1e-6, scratch: scratch)
                                }
                            }
                        }
                    }
                }
            }
        }
        linearBackward(
            dinp: &dx, ldDinp: C, dweight: &dQKVWeight, dbias: &dQKVBias, dout: dqkv, ldDout: 3 * C, inp: x.values,
            ldIn: C, weight: qkvWeight, layout: .outIn, N: N, I: C, O: 3 * C)

        // Gradients sum over every position: the same relative term, atol 1e-5.
        expectClose(dx, try tensor("grad/x"), atol: 1e-5, rtol: 1e-4, "\(name) grad x")
        expectClose(dOutWeight, try tensor("grad/out_projection.weight"), atol: 1e-5, rtol: 1e-4, "\(name) grad out W")
        expectClose(dOutBias, try tensor("grad/out_projection.bias"), atol: 1e-5, rtol: 1e-4, "\(name) grad out b")
        for (part, label) in ["query", "key", "value"].enumerated() {
            expectClose(
                Array(dQKVWeight[(part * C * C)..<((part + 1) * C * C)]), try tensor("grad/\(label)_projection.weight"),
                atol: 1e-5, rtol: 1e-4, "\(name) grad \(label) W")
            expectClose(
                Array(dQKVBias[(part * C)..<((part + 1) * C)]), try tensor("grad/\(label)_projection.bias"), atol: 1e-5,
                rtol: 1e-4, "\(name) grad \(label) b")
        }
    }
}
