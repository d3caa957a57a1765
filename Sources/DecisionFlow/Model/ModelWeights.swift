/// The parameters of one Decision Transformer: every tensor of `layout`, in one flat buffer.
///
/// Weights are apart from the memory that runs them. A `DecisionTransformer` (a training
/// workspace: one batch's activations, the gradients, the dropout generator) and any number
/// of `ActingEngine`s (acting workspaces for N agents) can share one `ModelWeights` without
/// copying it: training updates the weights in place, and an engine made from them acts on
/// the current values at its next step.
///
/// Threads: passes only read the weights, so engines on different threads may act on the
/// same weights at once. Changing them (an optimizer step, `withMutableValues`) while another
/// thread runs a pass on them is a data race; training and its periodic evaluation take
/// turns on one thread.
public final class ModelWeights: @unchecked Sendable {
    /// The model's shape.
    public let configuration: ModelConfiguration
    /// Where each named tensor lives in the buffer.
    public let layout: ParameterLayout
    /// The buffer the passes read, `layout.count` floats.
    let base: UnsafeMutablePointer<Float>

    /// Fresh weights: GPT-2's initialization inside the transformer (normal(0, 0.02) weights,
    /// zero biases, unit LayerNorms) and PyTorch's defaults for the embeddings and heads, as
    /// the reference gets them, drawn from `RandomGenerator(seed:)`.
    ///
    /// - Precondition: `configuration.problems` is empty.
    public init(configuration: ModelConfiguration, seed: UInt64) {
        precondition(configuration.problems.isEmpty, configuration.problems.joined(separator: "; "))
        self.configuration = configuration
        layout = ParameterLayout(configuration: configuration)
        base = .allocate(capacity: layout.count)
        base.initialize(repeating: 0, count: layout.count)
        var generator = RandomGenerator(seed: seed)
        initialize(&generator)
    }

    /// Weights with the given values, in `ParameterLayout(configuration:)` order (a
    /// checkpoint's or a state dict's).
    ///
    /// - Precondition: `configuration.problems` is empty and `values` holds exactly the
    ///   layout's count (checkpoints are checked when they are read).
    public init(configuration: ModelConfiguration, values: some Collection<Float>) {
        precondition(configuration.problems.isEmpty, configuration.problems.joined(separator: "; "))
        self.configuration = configuration
        layout = ParameterLayout(configuration: configuration)
        precondition(values.count == layout.count, "\(values.count) values for \(layout.count) weights")
        base = .allocate(capacity: layout.count)
        _ = UnsafeMutableBufferPointer(start: base, count: layout.count).initialize(from: values)
    }

    deinit { base.deallocate() }

    /// The whole buffer.
    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: layout.count) }

    /// A copy of the weights, in `layout` order.
    public var values: [Float] { Array(buffer) }

    /// Lends `body` the weights to overwrite in place, in `layout` order: how checkpoints and
    /// imported state dicts are loaded. The buffer is valid only during the call.
    public func withMutableValues<Result>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> Result) rethrows
        -> Result
    { try body(buffer) }

    private func initialize(_ generator: inout RandomGenerator) {
        for entry in layout.entries {
            let slice = UnsafeMutableBufferPointer(rebasing: buffer[entry.range])
            let name = entry.name
            if name.hasSuffix("ln_1.weight") || name.hasSuffix("ln_2.weight") || name.hasSuffix("ln.weight")
                || name.hasSuffix("ln_f.weight")
            {
                slice.update(repeating: 1)
            } else if name.hasPrefix("transformer.") {
                // GPT-2's _init_weights: every Linear/Conv1D/Embedding weight N(0, 0.02), biases 0.
                if name.hasSuffix(".weight") {
                    for index in slice.indices { slice[index] = 0.02 * generator.nextGaussian() }
                }
            } else if name == "embed_timestep.weight" {
                for index in slice.indices { slice[index] = generator.nextGaussian() }  // nn.Embedding
            } else if !name.hasPrefix("embed_ln") {
                // nn.Linear's default: U(−1/√fan_in, 1/√fan_in) for weight and bias.
                let fanIn =
                    name.hasSuffix(".weight")
                    ? entry.shape[1] : (layout.entries.first { $0.name == name.replacingBias() }?.shape[1] ?? 1)
                let bound = 1 / Float(fanIn).squareRoot()
                for index in slice.indices { slice[index] = (generator.nextFloat() * 2 - 1) * bound }
            }
        }
    }
}

extension String {
    /// `x.bias` → `x.weight`, for finding a bias's fan-in.
    fileprivate func replacingBias() -> String {
        hasSuffix(".bias") ? String(dropLast(".bias".count)) + ".weight" : self
    }
}
