import CBLAS

#if canImport(Glibc)
    import Glibc
#endif

/// A Decision Transformer (Chen et al. 2021) whose attention is causal Flow-Attention
/// ("Decision-Flowformer") or GPT-2's softmax attention, with forward and backward passes
/// written by hand over flat buffers.
///
/// The architecture is the reference's (thuml/Flowformer `Flowformer_RL`): per timestep the
/// tokens (return-to-go, state, action), each a linear embedding plus the timestep
/// embedding; one LayerNorm over the stacked sequence; pre-LN GPT-2 blocks (LayerNorm →
/// attention → residual → LayerNorm → MLP → residual); a final LayerNorm; the action predicted
/// from each state token through tanh, the next state and return from each action token.
///
/// Dimension letters: B sequences, T timesteps, L = 3T tokens, N = B·L token rows,
/// C channels, H heads, D = C/H, F MLP width, S state width, A action width.
public final class DecisionTransformer {
    /// The model's shape.
    public let configuration: ModelConfiguration
    /// Where each named tensor lives in `parameters` and `gradients`.
    public let layout: ParameterLayout
    /// All weights, in `layout` order.
    public var parameters: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: parameterBase, count: layout.count)
    }
    /// d loss / d parameters from the last `backward()`, in `layout` order.
    public var gradients: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: gradientBase, count: layout.count)
    }
    let parameterBase: UnsafeMutablePointer<Float>
    let gradientBase: UnsafeMutablePointer<Float>
    /// The generator dropout draws from; saved in checkpoints to resume runs exactly.
    public var dropoutGenerator: RandomGenerator

    let activations: ActivationBuffers
    /// Workers for the per-(batch, head) attention work, and BLAS threads elsewhere.
    let work: ParallelWork
    /// One scratch per worker.
    let flowScratch: [FlowAttentionScratch]
    /// One (3·L·L) scratch per worker, for softmax attention.
    let softmaxScratch: UnsafeMutablePointer<Float>
    /// The shape of the last forward pass, for `backward()` and the prediction accessors.
    private var lastBatchCount = 0
    private var lastTimesteps = 0
    /// The batch of the last forward pass; `backward()` reads its inputs and targets.
    private(set) weak var lastBatchForBackward: TrajectoryBatch?

    /// Creates a model with fresh weights: GPT-2's initialization inside the transformer
    /// (normal(0, 0.02) weights, zero biases, unit LayerNorms) and PyTorch's defaults for the
    /// embeddings and heads, as the reference gets them.
    ///
    /// - Parameters:
    ///   - batchCapacity: the most sequences one forward pass may hold.
    ///   - threads: worker threads (and BLAS threads); results are bit-for-bit the same for
    ///     a given count. Default: 2, the machines this is tuned for.
    public init(configuration: ModelConfiguration, batchCapacity: Int, seed: UInt64, threads: Int = 2) {
        precondition(configuration.problems.isEmpty, configuration.problems.joined(separator: "; "))
        precondition(batchCapacity > 0)
        self.configuration = configuration
        layout = ParameterLayout(configuration: configuration)
        parameterBase = .allocate(capacity: layout.count)
        parameterBase.initialize(repeating: 0, count: layout.count)
        gradientBase = .allocate(capacity: layout.count)
        gradientBase.initialize(repeating: 0, count: layout.count)
        dropoutGenerator = RandomGenerator(seed: seed &+ 0x5EED)
        activations = ActivationBuffers(configuration: configuration, batchCapacity: batchCapacity)
        work = ParallelWork(threadCount: threads)
        flowScratch = (0..<work.threadCount).map { _ in
            FlowAttentionScratch(L: configuration.tokenCount, D: configuration.headDimension)
        }
        let softmaxScratchCount = 3 * configuration.tokenCount * configuration.tokenCount * work.threadCount
        softmaxScratch = .allocate(capacity: softmaxScratchCount)
        softmaxScratch.initialize(repeating: 0, count: softmaxScratchCount)
        var generator = RandomGenerator(seed: seed)
        initializeWeights(&generator)
    }

    deinit {
        parameterBase.deallocate()
        gradientBase.deallocate()
        softmaxScratch.deallocate()
    }

    /// The most sequences one forward pass may hold.
    public var batchCapacity: Int { activations.batchCapacity }

    private func initializeWeights(_ generator: inout RandomGenerator) {
        for entry in layout.entries {
            let slice = UnsafeMutableBufferPointer(rebasing: parameters[entry.range])
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

    // MARK: - Forward

    /// Runs the model on `batch` and returns the masked mean squared error of the predicted
    /// actions against `batch.actions` (0 when no step is unmasked).
    ///
    /// - Parameter training: applies dropout (with `dropoutGenerator`) and keeps what
    ///   `backward()` needs; without it the pass is deterministic and dropout-free.
    @discardableResult
    public func forward(_ batch: TrajectoryBatch, training: Bool = false) -> Float {
        forward(batch, training: training, firstRow: 0)
    }

    /// Forward passes run so far; lets a caller that reuses activations check that nobody
    /// else ran the model in between.
    public private(set) var forwardCount = 0

    /// The forward pass, recomputing only token rows `firstRow…` of every row-wise stage and
    /// every attention query; rows before it keep the activations of the previous pass.
    ///
    /// Exact when those rows' inputs are unchanged since that pass: attention is causal, so
    /// an earlier row never sees a later one. `DecisionPolicy` uses it while an episode's
    /// window is still growing. Only for a single sequence without dropout.
    @discardableResult
    func forward(_ batch: TrajectoryBatch, training: Bool, firstRow r0: Int) -> Float {
        forwardCount += 1
        let cfg = configuration
        let B = batch.count
        let T = batch.timesteps
        precondition(B <= batchCapacity, "batch of \(B) exceeds the model's capacity \(batchCapacity)")
        precondition(T >= 1 && T <= cfg.contextLength, "\(T) timesteps; the context length is \(cfg.contextLength)")
        precondition(batch.stateDimension == cfg.stateDimension && batch.actionDimension == cfg.actionDimension)
        let L = 3 * T
        let N = B * L
        let C = cfg.embeddingDimension
        let S = cfg.stateDimension
        let A = cfg.actionDimension
        let F = cfg.mlpDimension
        let H = cfg.headCount
        let D = cfg.headDimension
        let p = UnsafePointer(parameterBase)
        let a = activations
        let dropout = training ? cfg.dropout : 0
        precondition(r0 == 0 || (B == 1 && !training && r0 < 3 * T), "row reuse is for one sequence, without dropout")
        let R = N - r0  // rows recomputed

        // Embeddings: token 3t is the return-to-go, 3t+1 the state, 3t+2 the action; each is its
        // linear embedding plus the timestep's embedding row.
        batch.states.withUnsafeBufferPointer { states in
            linearForward(
                out: a.stacked + C, ldOut: 3 * C, inp: states.baseAddress!, ldIn: S, weight: p + layout.stateWeight,
                bias: p + layout.stateBias, layout: .outIn, N: B * T, I: S, O: C, work: work)
        }
        batch.actions.withUnsafeBufferPointer { actions in
            linearForward(
                out: a.stacked + 2 * C, ldOut: 3 * C, inp: actions.baseAddress!, ldIn: A,
                weight: p + layout.actionWeight, bias: p + layout.actionBias, layout: .outIn, N: B * T, I: A, O: C,
                work: work)
        }
        for row in 0..<(B * T) {
            let timestep = Int(batch.timestepIndices[row])
            precondition(
                timestep >= 0 && timestep < cfg.maxEpisodeLength, "timestep \(timestep) outside the embedding table")
            let time = p + layout.timestepEmbedding + timestep * C
            let rtg = batch.returnsToGo[row]
            let tokens = a.stacked + 3 * row * C
            for c in 0..<C {
                tokens[c] = rtg * p[layout.returnWeight + c] + p[layout.returnBias + c] + time[c]
                tokens[C + c] += time[c]
                tokens[2 * C + c] += time[c]
            }
        }
        layerNormForward(
            out: a.embedNorm + r0 * C, mean: a.embedNormMean + r0, rstd: a.embedNormRstd + r0, inp: a.stacked + r0 * C,
            weight: p + layout.embedNormWeight, bias: p + layout.embedNormBias, N: R, C: C, eps: cfg.layerNormEpsilon,
            work: work)
        dropoutForward(
            out: a.residuals[0] + r0 * C, mask: a.embedDropMask + r0 * C, inp: a.embedNorm + r0 * C, count: R * C,
            probability: dropout, generator: &dropoutGenerator, work: work)

        // The (B, 3T) token mask, for the softmax attention's additive padding mask.
        let tokenMask = a.scratch
        if cfg.attention == .softmax {
            for row in 0..<(B * T) {
                for token in 0..<3 { tokenMask[3 * row + token] = batch.mask[row] }
            }
        }

        for (index, block) in layout.blocks.enumerated() {
            let x = a.residuals[index]
            let buffers = a.blocks[index]
            layerNormForward(
                out: buffers.ln1 + r0 * C, mean: buffers.ln1Mean + r0, rstd: buffers.ln1Rstd + r0, inp: x + r0 * C,
                weight: p + block.ln1Weight, bias: p + block.ln1Bias, N: R, C: C, eps: cfg.layerNormEpsilon, work: work)
            let projectionLayout: WeightLayout = cfg.attention == .flow ? .outIn : .inOut
            linearForward(
                out: buffers.qkv + r0 * 3 * C, ldOut: 3 * C, inp: buffers.ln1 + r0 * C, ldIn: C,
                weight: p + block.qkvWeight,
                bias: p + block.qkvBias, layout: projectionLayout, N: R, I: C, O: 3 * C, work: work)
            if cfg.attention == .softmax {
                // Drawn in order before the parallel region, so results do not depend on threads.
                dropoutMask(
                    buffers.attentionDropMask, count: B * H * L * L, probability: dropout, generator: &dropoutGenerator,
                    work: work)
            }
            let pairs = AttentionPairs(
                kind: cfg.attention, H: H, L: L, C: C, D: D, eps: cfg.flowEpsilon, qkv: buffers.qkv,
                output: buffers.attentionOutput, beforeAllocation: buffers.beforeAllocation,
                cache: buffers.attentionCache, dropMask: buffers.attentionDropMask, tokenMask: tokenMask,
                dqkv: a.dQKV, flowScratch: flowScratch, softmaxScratch: softmaxScratch, firstRow: r0)
            work.forEach(B * H, pairs, AttentionPairs.forward)
            linearForward(
                out: a.dProjection + r0 * C, ldOut: C, inp: buffers.attentionOutput + r0 * C, ldIn: C,
                weight: p + block.projectionWeight, bias: p + block.projectionBias, layout: projectionLayout, N: R,
                I: C,
                O: C, work: work)
            dropoutForward(
                out: a.dProjection + r0 * C, mask: buffers.attentionResidualMask + r0 * C, inp: a.dProjection + r0 * C,
                count: R * C, probability: dropout, generator: &dropoutGenerator, work: work)
            for index in (r0 * C)..<(N * C) { buffers.residualMid[index] = x[index] + a.dProjection[index] }

            layerNormForward(
                out: buffers.ln2 + r0 * C, mean: buffers.ln2Mean + r0, rstd: buffers.ln2Rstd + r0,
                inp: buffers.residualMid + r0 * C, weight: p + block.ln2Weight, bias: p + block.ln2Bias, N: R, C: C,
                eps: cfg.layerNormEpsilon, work: work)
            linearForward(
                out: buffers.fcPre + r0 * F, ldOut: F, inp: buffers.ln2 + r0 * C, ldIn: C, weight: p + block.fcWeight,
                bias: p + block.fcBias, layout: .inOut, N: R, I: C, O: F, work: work)
            activationForward(
                out: buffers.fcActivated + r0 * F, inp: buffers.fcPre + r0 * F, count: R * F, kind: cfg.activation,
                work: work)
            linearForward(
                out: a.dProjection + r0 * C, ldOut: C, inp: buffers.fcActivated + r0 * F, ldIn: F,
                weight: p + block.fcProjectionWeight, bias: p + block.fcProjectionBias, layout: .inOut, N: R, I: F,
                O: C, work: work)
            dropoutForward(
                out: a.dProjection + r0 * C, mask: buffers.mlpResidualMask + r0 * C, inp: a.dProjection + r0 * C,
                count: R * C, probability: dropout, generator: &dropoutGenerator, work: work)
            let next = a.residuals[index + 1]
            for index in (r0 * C)..<(N * C) { next[index] = buffers.residualMid[index] + a.dProjection[index] }
        }

        layerNormForward(
            out: a.finalNorm + r0 * C, mean: a.finalNormMean + r0, rstd: a.finalNormRstd + r0,
            inp: a.residuals[cfg.layerCount] + r0 * C, weight: p + layout.finalNormWeight,
            bias: p + layout.finalNormBias,
            N: R, C: C, eps: cfg.layerNormEpsilon, work: work)

        // Heads: the action from each state token, the next state and return from each action token.
        linearForward(
            out: a.actionPredictions, ldOut: A, inp: a.finalNorm + C, ldIn: 3 * C,
            weight: p + layout.predictActionWeight,
            bias: p + layout.predictActionBias, layout: .outIn, N: B * T, I: C, O: A, work: work)
        if cfg.actionTanh {
            for index in 0..<(B * T * A) { a.actionPredictions[index] = tanhf(a.actionPredictions[index]) }
        }
        linearForward(
            out: a.statePredictions, ldOut: S, inp: a.finalNorm + 2 * C, ldIn: 3 * C,
            weight: p + layout.predictStateWeight, bias: p + layout.predictStateBias, layout: .outIn, N: B * T, I: C,
            O: S, work: work)
        linearForward(
            out: a.returnPredictions, ldOut: 1, inp: a.finalNorm + 2 * C, ldIn: 3 * C,
            weight: p + layout.predictReturnWeight, bias: p + layout.predictReturnBias, layout: .outIn, N: B * T,
            I: C, O: 1, work: work)

        lastBatchCount = B
        lastTimesteps = T
        lastBatchForBackward = batch
        return actionLoss(batch)
    }

    /// Mean squared error of the action predictions over unmasked steps.
    private func actionLoss(_ batch: TrajectoryBatch) -> Float {
        let A = configuration.actionDimension
        var sum: Float = 0
        var steps = 0
        for row in 0..<(batch.count * batch.timesteps) where batch.mask[row] > 0 {
            steps += 1
            for j in 0..<A {
                let error = activations.actionPredictions[row * A + j] - batch.actions[row * A + j]
                sum += error * error
            }
        }
        return steps == 0 ? 0 : sum / Float(steps * A)
    }

    /// The action predictions of the last forward pass, (B, T, A).
    public var actionPredictions: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(
            start: activations.actionPredictions, count: lastBatchCount * lastTimesteps * configuration.actionDimension)
    }

    /// The state predictions of the last forward pass, (B, T, S).
    public var statePredictions: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(
            start: activations.statePredictions, count: lastBatchCount * lastTimesteps * configuration.stateDimension)
    }

    /// The return predictions of the last forward pass, (B, T).
    public var returnPredictions: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: activations.returnPredictions, count: lastBatchCount * lastTimesteps)
    }
}

extension String {
    /// `x.bias` → `x.weight`, for finding a bias's fan-in.
    fileprivate func replacingBias() -> String {
        hasSuffix(".bias") ? String(dropLast(".bias".count)) + ".weight" : self
    }
}
