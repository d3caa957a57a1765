/// The running Flow-Attention state of up to `capacity` sequences in every layer and head:
/// all that causal Flow-Attention needs from a sequence's earlier tokens (see `FlowState`).
///
/// With it, `DecisionTransformer.forwardAppending(_:firstToken:recurrence:)` runs only the
/// tokens a policy adds at a step, at a cost that does not depend on how many came before:
/// O(layers · (C² + D²)) per token. `DecisionPolicy` and the batched evaluation use it while
/// an episode's window is still growing. Size: capacity · layers · heads · (D² + 4D + 2) floats.
public final class FlowRecurrence {
    /// The states of one layer, as the attention kernels see them.
    struct Layer {
        let base: UnsafeMutablePointer<Float>
        let heads: Int
        let stride: Int  // floats per (sequence, head) state
        /// The state of batch row `sequence`, head `head`.
        func state(sequence: Int, head: Int) -> UnsafeMutablePointer<Float> {
            base + (sequence * heads + head) * stride
        }
    }

    /// Sequences it can hold.
    public let capacity: Int
    let layerCount: Int
    let heads: Int
    let headDimension: Int
    private let stride: Int
    private let storage: UnsafeMutablePointer<Float>

    /// States for `capacity` sequences of `model`, all empty.
    public init(model: DecisionTransformer, capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
        let c = model.configuration
        layerCount = c.layerCount
        heads = c.headCount
        headDimension = c.headDimension
        stride = FlowState.count(D: c.headDimension)
        let count = capacity * layerCount * heads * stride
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
    }

    deinit { storage.deallocate() }

    /// Layer `layer`'s states, sequence-major within the layer.
    func layer(_ layer: Int) -> Layer {
        Layer(base: storage + layer * capacity * heads * stride, heads: heads, stride: stride)
    }

    /// Positions folded into sequence `sequence`'s state (every layer and head agree).
    public func positions(sequence: Int) -> Int {
        Int(FlowState.positions(layer(0).state(sequence: sequence, head: 0), D: headDimension).pointee)
    }

    /// Empties sequence `sequence`'s state in every layer.
    public func clear(sequence: Int) {
        for l in 0..<layerCount {
            (layer(l).state(sequence: sequence, head: 0)).update(repeating: 0, count: heads * stride)
        }
    }

    /// Copies sequence `source`'s state over sequence `target`'s, in every layer (for
    /// compacting a batch when episodes end).
    public func copy(sequence source: Int, to target: Int) {
        guard source != target else { return }
        for l in 0..<layerCount {
            let layer = layer(l)
            layer.state(sequence: target, head: 0).update(from: layer.state(sequence: source, head: 0), count: heads * stride)
        }
    }
}
