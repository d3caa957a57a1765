import RealModule

/// AdamW with PyTorch's semantics (`torch.optim.AdamW`), over the model's flat buffers.
///
/// Per parameter with a gradient, at step t (counting from 1):
///   p ← p · (1 − lr · weightDecay)                      (decoupled weight decay)
///   m ← β₁ m + (1 − β₁) g ;  v ← β₂ v + (1 − β₂) g²
///   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)   (bias correction, as PyTorch applies it)
///
/// Weight decay applies to every tensor that receives a gradient, biases and LayerNorms
/// included, as the reference's `AdamW(model.parameters(), weight_decay=…)` does. Tensors the
/// loss does not reach (`ParameterLayout.Entry.receivesGradient` false) are skipped
/// entirely, as PyTorch skips parameters whose gradient is None: no decay, no moment update.
public struct AdamW: Sendable {
    /// Hyperparameters.
    public struct Settings: Codable, Sendable, Equatable {
        /// Decay of the first-moment (mean) estimate; PyTorch's default 0.9.
        public var beta1: Float
        /// Decay of the second-moment estimate; PyTorch's default 0.999.
        public var beta2: Float
        /// Added to the second moment's root for stability; 1e-8.
        public var epsilon: Float
        /// Decoupled weight decay per unit of learning rate; the reference's 1e-4.
        public var weightDecay: Float

        /// PyTorch's defaults, with the reference's weight decay 1e-4.
        public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 1e-4) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
    }

    /// The hyperparameters every update uses.
    public var settings: Settings
    /// Steps taken so far (t after the last step).
    public var step: Int
    /// First moments, in the model's parameter layout.
    public var firstMoment: [Float]
    /// Second moments, in the model's parameter layout.
    public var secondMoment: [Float]
    /// Which element ranges are updated.
    private let updatedRanges: [Range<Int>]

    /// An optimizer for a model with this layout, with zero moments.
    public init(layout: ParameterLayout, settings: Settings = Settings()) {
        self.settings = settings
        step = 0
        firstMoment = [Float](repeating: 0, count: layout.count)
        secondMoment = [Float](repeating: 0, count: layout.count)
        updatedRanges = layout.entries.filter(\.receivesGradient).map(\.range)
    }

    /// Takes one step on `model`'s weights with its gradients (from `backward(_:)`).
    public mutating func update(_ model: DecisionTransformer, learningRate: Float) {
        precondition(model.layout.count == firstMoment.count, "the optimizer was made for another model")
        update(parameters: model.parameters, gradients: UnsafeBufferPointer(model.gradients), learningRate: learningRate)
    }

    /// Takes one step with learning rate `learningRate`.
    mutating func update(
        parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>, learningRate: Float
    ) {
        step += 1
        let (beta1, beta2, epsilon) = (settings.beta1, settings.beta2, settings.epsilon)
        let decay = 1 - learningRate * settings.weightDecay
        let biasCorrection1 = 1 - Float.pow(beta1, step)
        let biasCorrection2Root = (1 - Float.pow(beta2, step)).squareRoot()
        let stepSize = learningRate / biasCorrection1
        firstMoment.withUnsafeMutableBufferPointer { m in
            secondMoment.withUnsafeMutableBufferPointer { v in
                for range in updatedRanges {
                    for i in range {
                        let g = gradients[i]
                        parameters[i] *= decay
                        m[i] += (g - m[i]) * (1 - beta1)  // PyTorch's lerp
                        v[i] = v[i] * beta2 + (1 - beta2) * g * g
                        let denominator = v[i].squareRoot() / biasCorrection2Root + epsilon
                        parameters[i] -= stepSize * m[i] / denominator
                    }
                }
            }
        }
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm` (PyTorch's
/// `clip_grad_norm_`: coefficient maxNorm / (norm + 1e-6), capped at 1). Returns the norm
/// before clipping.
@discardableResult
public func clipGradientNorm(of model: DecisionTransformer, maxNorm: Float) -> Float {
    clipGradientNorm(model.gradients, maxNorm: maxNorm)
}

/// `clipGradientNorm(of:maxNorm:)` on a buffer of gradients.
@discardableResult
func clipGradientNorm(_ gradients: UnsafeMutableBufferPointer<Float>, maxNorm: Float) -> Float {
    let norm = globalNorm(UnsafeBufferPointer(gradients))
    let coefficient = min(maxNorm / (norm + 1e-6), 1)
    if coefficient < 1 {
        for index in gradients.indices { gradients[index] *= coefficient }
    }
    return norm
}

/// The L2 norm of all `values`, accumulated in Double: one home for the gradient norm that
/// clipping and logging report.
func globalNorm(_ values: UnsafeBufferPointer<Float>) -> Float {
    var sum = 0.0
    for value in values { sum += Double(value) * Double(value) }
    return Float(sum.squareRoot())
}

/// The reference's schedule: linear warmup from lr/warmup to lr over `warmupSteps`, then
/// constant (`LambdaLR(lambda s: min((s + 1) / warmup, 1))`).
public struct WarmupSchedule: Codable, Sendable, Equatable {
    /// The learning rate reached at the end of warmup and kept after it.
    public var learningRate: Float
    /// Steps over which the rate rises linearly from 0.
    public var warmupSteps: Int

    /// Creates a schedule; see the properties for the meaning of each value.
    public init(learningRate: Float, warmupSteps: Int) {
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
    }

    /// The learning rate of step `step` (0-based).
    public func learningRate(atStep step: Int) -> Float {
        guard warmupSteps > 0 else { return learningRate }
        return learningRate * min(Float(step + 1) / Float(warmupSteps), 1)
    }
}
