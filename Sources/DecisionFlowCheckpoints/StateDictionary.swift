import DecisionFlow
import DecisionFlowSupport

extension DecisionTransformer {
    /// Copies a PyTorch-style state dictionary (the reference's names and shapes) into the
    /// parameters. `prefix` is stripped from every key first (the fixtures use `param/`).
    ///
    /// Every tensor of the layout must be present with exactly its shape; extra tensors are an
    /// error too, since they mean the dictionary belongs to a different architecture.
    public func load(stateDictionary: [String: SafetensorsTensor], prefix: String = "", source: String) throws {
        var remaining = Set(stateDictionary.keys.filter { $0.hasPrefix(prefix) })
        // Everything is checked before any weight is written: a bad file leaves the model as it was.
        for entry in layout.entries {
            let key = prefix + entry.name
            guard let tensor = stateDictionary[key] else {
                throw CheckpointError(
                    file: source,
                    problem:
                        "tensor '\(entry.name)' is missing; the checkpoint was made for a different configuration (this model: \(configuration.summary))"
                )
            }
            guard tensor.shape == entry.shape else {
                throw CheckpointError(
                    file: source,
                    problem:
                        "tensor '\(entry.name)' has shape \(tensor.shape) but this model needs \(entry.shape); the checkpoint was made for a different configuration (this model: \(configuration.summary))"
                )
            }
            try tensor.requireFinite(name: entry.name, file: source)
            remaining.remove(key)
        }
        // GPT-2's registered buffers (the causal mask and its fill value) are part of a softmax
        // state dict but not weights: check their shapes and skip them.
        for key in remaining.sorted() {
            guard configuration.attention == .softmax, let tensor = stateDictionary[key],
                let buffer = Self.gpt2Buffer(String(key.dropFirst(prefix.count)), layers: configuration.layerCount)
            else { continue }
            let fits =
                buffer == "bias"
                ? tensor.shape.count == 4 && tensor.shape[0] == 1 && tensor.shape[1] == 1
                    && tensor.shape[2] == tensor.shape[3] && tensor.shape[2] >= configuration.tokenCount
                : tensor.shape.reduce(1, *) == 1
            guard fits else {
                throw CheckpointError(
                    file: source,
                    problem:
                        "GPT-2 buffer '\(key.dropFirst(prefix.count))' has shape \(tensor.shape); expected \(buffer == "bias" ? "[1, 1, n, n] with n ≥ \(configuration.tokenCount) tokens" : "one value")"
                )
            }
            remaining.remove(key)
        }
        if let extra = remaining.sorted().first {
            throw CheckpointError(
                file: source,
                problem:
                    "tensor '\(extra.dropFirst(prefix.count))' has no place in this model (\(configuration.summary)); the checkpoint was made for a different architecture"
            )
        }
        withMutableParameters { weights in
            for entry in layout.entries {
                for (offset, value) in stateDictionary[prefix + entry.name]!.values.enumerated() {
                    weights[entry.offset + offset] = value
                }
            }
        }
    }
}

extension SafetensorsTensor {
    /// Throws, naming the tensor and the first bad index, when a value is NaN or infinite:
    /// such weights come from a diverged run or a damaged file, and would only surface later
    /// as NaN actions.
    func requireFinite(name: String, file: String) throws {
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw CheckpointError(
                file: file,
                problem:
                    "tensor '\(name)' holds \(values[bad]) at index \(bad); the weights are broken (a diverged training run?), use an earlier checkpoint"
            )
        }
    }
}

extension DecisionTransformer {
    /// "bias" or "masked_bias" when `name` is GPT-2's causal-mask buffer of one of the first
    /// `layers` blocks (`transformer.h.3.attn.bias`), nil otherwise.
    static func gpt2Buffer(_ name: String, layers: Int) -> String? {
        let parts = name.split(separator: ".")
        guard parts.count == 5, parts[0] == "transformer", parts[1] == "h", let block = Int(parts[2]),
            (0..<layers).contains(block), parts[3] == "attn", parts[4] == "bias" || parts[4] == "masked_bias"
        else { return nil }
        return String(parts[4])
    }
}
