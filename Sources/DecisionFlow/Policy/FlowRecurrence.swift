/// The running Flow-Attention state of `capacity` agents (an `ActingEngine`'s slots) in every
/// layer and head: all that causal Flow-Attention needs from an agent's earlier tokens (see
/// `FlowState`).
///
/// With it, an acting step runs only the tokens it adds to a growing window, at a cost that
/// does not depend on how many came before: O(layers · (C² + D²)) per token. Size:
/// capacity · layers · heads · (D² + 4D + 2) floats.
final class FlowRecurrence {
    /// The states of one layer, as the attention kernels see them.
    struct Layer {
        let base: UnsafeMutablePointer<Float>
        let heads: Int
        let stride: Int  // floats per (sequence, head) state
        /// The state of agent `sequence`, head `head`.
        func state(sequence: Int, head: Int) -> UnsafeMutablePointer<Float> {
            base + (sequence * heads + head) * stride
        }
    }

    /// Agents it holds.
    let capacity: Int
    let layerCount: Int
    let heads: Int
    let headDimension: Int
    private let stride: Int
    private let storage: UnsafeMutablePointer<Float>

    /// States for `capacity` agents of a model of shape `c`, all empty.
    init(configuration c: ModelConfiguration, capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
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

    /// Positions folded into agent `sequence`'s state (every layer and head agree).
    func positions(sequence: Int) -> Int {
        Int(FlowState.positions(layer(0).state(sequence: sequence, head: 0), D: headDimension).pointee)
    }

    /// Empties agent `sequence`'s state in every layer.
    func clear(sequence: Int) {
        for l in 0..<layerCount {
            (layer(l).state(sequence: sequence, head: 0)).update(repeating: 0, count: heads * stride)
        }
    }
}
