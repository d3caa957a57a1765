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
    /// The weights the passes read and the optimizer updates; other workspaces (an
    /// `ActingEngine`, another `DecisionTransformer`) may share them.
    public let weights: ModelWeights
    /// The model's shape.
    public var configuration: ModelConfiguration { weights.configuration }
    /// Where each named tensor lives in the weights and gradients.
    public var layout: ParameterLayout { weights.layout }
    /// All weights, in `layout` order (the buffer the passes read).
    var parameters: UnsafeMutableBufferPointer<Float> { weights.buffer }
    /// d loss / d parameters from the last `backward(_:)`, in `layout` order.
    var gradients: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: gradientBase, count: layout.count)
    }
    var parameterBase: UnsafeMutablePointer<Float> { weights.base }
    let gradientBase: UnsafeMutablePointer<Float>
    /// The generator dropout draws from; saved in checkpoints to resume runs exactly.
    public package(set) var dropoutGenerator: RandomGenerator

    let activations: ActivationBuffers
    /// Workers for the per-(batch, head) attention work, and BLAS threads elsewhere.
    let work: ParallelWork
    /// One scratch per worker.
    let flowScratch: [FlowAttentionScratch]
    /// One (3·L·L) scratch per worker, for softmax attention only.
    let softmaxScratch: UnsafeMutablePointer<Float>?
    /// The shape of the last forward pass, for the prediction accessors.
    private var lastBatchCount = 0
    private var lastTimesteps = 0
    /// The last forward pass, if `backward(_:)` may follow it: which batch it ran on (by
    /// identity only; the caller passes the batch itself to `backward`) and its shape.
    var lastFullPass: (batch: ObjectIdentifier, count: Int, timesteps: Int)?
    /// Whether the last forward pass ran its last block's MLP on state tokens only.
    private(set) var lastPassCompact = false
    /// The sum of squared action errors over the unmasked steps of the last training or
    /// complete forward pass, and the number of those steps: the loss is sum / (steps · A).
    package private(set) var lastActionError: (sum: Float, steps: Int) = (0, 0)

    /// Creates a model with fresh weights (`ModelWeights(configuration:seed:)`) and a
    /// workspace for `batchCapacity` sequences.
    ///
    /// - Parameters:
    ///   - configuration: the model's shape.
    ///   - batchCapacity: the most sequences one forward pass may hold.
    ///   - seed: seeds the initial weights and the dropout masks.
    ///   - threads: worker threads (and BLAS threads); results are bit-for-bit the same for
    ///     a given count. Default: 2, the machines this is tuned for.
    ///   - flowChunkLength: the chunk length of causal Flow-Attention; default
    ///     `FlowChunking.defaultLength(tokens:)` of the context. Results differ only in
    ///     rounding between chunk lengths.
    public convenience init(
        configuration: ModelConfiguration, batchCapacity: Int, seed: UInt64, threads: Int = 2,
        flowChunkLength: Int? = nil
    ) {
        self.init(
            weights: ModelWeights(configuration: configuration, seed: seed), batchCapacity: batchCapacity, seed: seed,
            threads: threads, flowChunkLength: flowChunkLength)
    }

    /// Creates a training workspace for `batchCapacity` sequences on `weights`, which it
    /// shares (nothing is copied): its optimizer steps change them for every holder.
    ///
    /// - Parameters:
    ///   - weights: the weights to run and train.
    ///   - batchCapacity: the most sequences one forward pass may hold.
    ///   - seed: seeds the dropout masks (as `init(configuration:batchCapacity:seed:)` does).
    ///   - threads: worker threads (and BLAS threads).
    ///   - flowChunkLength: the chunk length of causal Flow-Attention.
    public init(
        weights: ModelWeights, batchCapacity: Int, seed: UInt64, threads: Int = 2, flowChunkLength: Int? = nil
    ) {
        precondition(batchCapacity > 0)
        let configuration = weights.configuration
        self.weights = weights
        gradientBase = .allocate(capacity: weights.layout.count)
        gradientBase.initialize(repeating: 0, count: weights.layout.count)
        dropoutGenerator = RandomGenerator(seed: seed &+ 0x5EED)
        precondition(flowChunkLength.map { $0 >= 1 } ?? true)
        work = ParallelWork(threadCount: threads)
        let flow = configuration.attention == .flow
        flowScratch = (0..<(flow ? work.threadCount : 1)).map { _ in
            FlowAttentionScratch(
                L: flow ? configuration.tokenCount : 0, D: configuration.headDimension, chunk: flowChunkLength)
        }
        activations = ActivationBuffers(
            configuration: configuration, batchCapacity: batchCapacity, flowChunk: flowScratch[0].chunk)
        if flow {
            softmaxScratch = nil
        } else {
            let softmaxScratchCount = 3 * configuration.tokenCount * configuration.tokenCount * work.threadCount
            softmaxScratch = .allocate(capacity: softmaxScratchCount)
            softmaxScratch!.initialize(repeating: 0, count: softmaxScratchCount)
        }
    }

    deinit {
        gradientBase.deallocate()
        softmaxScratch?.deallocate()
    }

    /// The chunk length of causal Flow-Attention.
    public var flowChunkLength: Int { flowScratch[0].chunk }

    /// The most sequences one forward pass may hold.
    public var batchCapacity: Int { activations.batchCapacity }

    // MARK: - Forward

    /// Runs the model on `batch` and returns the masked mean squared error of the predicted
    /// actions against `batch.actions` (0 when no step is unmasked).
    ///
    /// - Parameters:
    ///   - batch: the windows to run, filled by the caller.
    ///   - training: applies dropout (with `dropoutGenerator`) and computes only what the
    ///     action loss and `backward()` need: after the last block's attention, only the state
    ///     tokens (the action is predicted from them), and no state or return predictions.
    ///     Without it the pass is deterministic, dropout-free and complete.
    ///
    /// Acting does not come here: `ActingEngine` runs its own passes on the same weights.
    @discardableResult
    public func forward(_ batch: TrajectoryBatch, training: Bool = false) -> Float {
        forward(batch, training: training, actionsOnly: training)
    }

    /// The forward pass over every token of every window: a training step's, or a complete
    /// inference pass (every head, for the reference fixtures and the PyTorch round trip).
    ///
    /// With `actionsOnly`, everything after the last block's attention runs on the state
    /// tokens alone, packed as (B·T, C) rows: only they reach the action loss.
    @discardableResult
    func forward(_ batch: TrajectoryBatch, training: Bool, actionsOnly: Bool) -> Float {
        let cfg = configuration
        let B = batch.count
        let T = batch.timesteps
        precondition(B <= batchCapacity, "batch of \(B) exceeds the model's capacity \(batchCapacity)")
        precondition(T >= 1 && T <= cfg.contextLength, "\(T) timesteps; the context length is \(cfg.contextLength)")
        precondition(batch.stateDimension == cfg.stateDimension && batch.actionDimension == cfg.actionDimension)
        let L = 3 * T
        let (C, S, A, F, H, D) = cfg.letters
        let p = UnsafePointer(parameterBase)
        let a = activations
        let dropout = training ? cfg.dropout : 0
        let rows = B * L
        // The last block after attention, and the final LayerNorm, on state tokens only.
        let compact = actionsOnly
        let stateRows = B * T

        // Embeddings: token 3t is the return-to-go, 3t+1 the state, 3t+2 the action; each is its
        // linear embedding plus the timestep's embedding row.
        weights.embedAllTokens(batch, into: a.stacked, work: work)
        layerNormForward(
            out: a.embedNorm, mean: a.embedNormMean, rstd: a.embedNormRstd,
            inp: a.stacked, weight: p + layout.embedNormWeight, bias: p + layout.embedNormBias, N: rows,
            C: C, eps: cfg.layerNormEpsilon, work: work)
        dropoutForward(
            out: a.residuals[0], mask: a.embedDropMask, inp: a.embedNorm,
            count: rows * C, probability: dropout, generator: &dropoutGenerator, work: work)

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
                out: buffers.ln1, mean: buffers.ln1Mean, rstd: buffers.ln1Rstd,
                inp: x, weight: p + block.ln1Weight, bias: p + block.ln1Bias, N: rows, C: C,
                eps: cfg.layerNormEpsilon, work: work)
            let projectionLayout: WeightLayout = cfg.attention == .flow ? .outIn : .inOut
            linearForward(
                out: buffers.qkv, ldOut: 3 * C, inp: buffers.ln1, ldIn: C,
                weight: p + block.qkvWeight, bias: p + block.qkvBias, layout: projectionLayout, N: rows, I: C,
                O: 3 * C, work: work)
            if cfg.attention == .softmax {
                // Drawn in order before the parallel region, so results do not depend on threads.
                dropoutMask(
                    buffers.attentionDropMask, count: B * H * L * L, probability: dropout, generator: &dropoutGenerator,
                    work: work)
            }
            let pairs = AttentionPairs(
                kind: cfg.attention, H: H, L: L, C: C, D: D, eps: cfg.flowEpsilon,
                qkv: buffers.qkv, output: buffers.attentionOutput, beforeAllocation: buffers.beforeAllocation,
                cache: buffers.attentionCache, dropMask: buffers.attentionDropMask, tokenMask: tokenMask,
                dqkv: a.dQKV, flowScratch: flowScratch, softmaxScratch: softmaxScratch)
            pairs.run(AttentionPairs.forward, count: B * H, work: work)
            // From here on the block runs on `postRows` rows: all of them,
            // or, in the last block of a compact pass, the state tokens packed densely.
            let packed = compact && index == cfg.layerCount - 1
            let postRows = packed ? stateRows : rows
            let postRange = 0..<(postRows * C)
            linearForward(
                out: a.dProjection, ldOut: C,
                inp: buffers.attentionOutput + (packed ? C : 0), ldIn: packed ? 3 * C : C,
                weight: p + block.projectionWeight, bias: p + block.projectionBias, layout: projectionLayout,
                N: postRows, I: C, O: C, work: work)
            dropoutForward(
                out: a.dProjection, mask: buffers.attentionResidualMask,
                inp: a.dProjection, count: postRows * C, probability: dropout,
                generator: &dropoutGenerator, work: work)
            if packed {
                for row in 0..<stateRows {
                    vectorScaleAdd(
                        buffers.residualMid + row * C, x + (3 * row + 1) * C, 1, a.dProjection + row * C, count: C)
                }
            } else {
                for index in postRange { buffers.residualMid[index] = x[index] + a.dProjection[index] }
            }

            layerNormForward(
                out: buffers.ln2, mean: buffers.ln2Mean, rstd: buffers.ln2Rstd,
                inp: buffers.residualMid, weight: p + block.ln2Weight, bias: p + block.ln2Bias,
                N: postRows, C: C, eps: cfg.layerNormEpsilon, work: work)
            linearForward(
                out: buffers.fcPre, ldOut: F, inp: buffers.ln2, ldIn: C,
                weight: p + block.fcWeight, bias: p + block.fcBias, layout: .inOut, N: postRows, I: C, O: F,
                work: work)
            activationForward(
                out: buffers.fcActivated, inp: buffers.fcPre, count: postRows * F,
                kind: cfg.activation, work: work)
            linearForward(
                out: a.dProjection, ldOut: C, inp: buffers.fcActivated, ldIn: F,
                weight: p + block.fcProjectionWeight, bias: p + block.fcProjectionBias, layout: .inOut, N: postRows,
                I: F, O: C, work: work)
            dropoutForward(
                out: a.dProjection, mask: buffers.mlpResidualMask,
                inp: a.dProjection, count: postRows * C, probability: dropout,
                generator: &dropoutGenerator, work: work)
            let next = a.residuals[index + 1]
            for index in postRange { next[index] = buffers.residualMid[index] + a.dProjection[index] }
        }

        let finalRows = compact ? stateRows : rows
        layerNormForward(
            out: a.finalNorm, mean: a.finalNormMean, rstd: a.finalNormRstd,
            inp: a.residuals[cfg.layerCount], weight: p + layout.finalNormWeight,
            bias: p + layout.finalNormBias, N: finalRows, C: C, eps: cfg.layerNormEpsilon, work: work)

        lastBatchCount = B
        lastTimesteps = T
        // Heads: the action from each state token, the next state and return from each action token.
        linearForward(
            out: a.actionPredictions, ldOut: A, inp: a.finalNorm + (compact ? 0 : C), ldIn: compact ? C : 3 * C,
            weight: p + layout.predictActionWeight,
            bias: p + layout.predictActionBias, layout: .outIn, N: B * T, I: C, O: A, work: work)
        if cfg.actionTanh {
            for index in 0..<(B * T * A) { a.actionPredictions[index] = tanhf(a.actionPredictions[index]) }
        }
        lastPassCompact = compact
        lastFullPass = (ObjectIdentifier(batch), B, T)
        if compact { return actionLoss(batch) }
        linearForward(
            out: a.statePredictions, ldOut: S, inp: a.finalNorm + 2 * C, ldIn: 3 * C,
            weight: p + layout.predictStateWeight, bias: p + layout.predictStateBias, layout: .outIn, N: B * T, I: C,
            O: S, work: work)
        linearForward(
            out: a.returnPredictions, ldOut: 1, inp: a.finalNorm + 2 * C, ldIn: 3 * C,
            weight: p + layout.predictReturnWeight, bias: p + layout.predictReturnBias, layout: .outIn, N: B * T,
            I: C, O: 1, work: work)

        return actionLoss(batch)
    }

    /// Mean squared error of the action predictions over unmasked steps; records the sum and
    /// the step count in `lastActionError`.
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
        lastActionError = (sum, steps)
        return steps == 0 ? 0 : sum / Float(steps * A)
    }

    /// The action predictions of the last forward pass, (B, T, A): the buffer itself, which
    /// the next pass overwrites.
    var actionPredictionBuffer: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(
            start: activations.actionPredictions, count: lastBatchCount * lastTimesteps * configuration.actionDimension)
    }

    /// The state predictions of the last forward pass, (B, T, S).
    var statePredictionBuffer: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(
            start: activations.statePredictions, count: lastBatchCount * lastTimesteps * configuration.stateDimension)
    }

    /// The return predictions of the last forward pass, (B, T).
    var returnPredictionBuffer: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: activations.returnPredictions, count: lastBatchCount * lastTimesteps)
    }
}

// MARK: - Reading and writing weights and outputs

extension DecisionTransformer {
    /// A copy of the weights, in `layout` order.
    public var parameterValues: [Float] { Array(parameters) }

    /// Lends `body` the weights to overwrite in place, in `layout` order: how checkpoints and
    /// imported state dicts are loaded. The buffer is valid only during the call.
    public func withMutableParameters<Result>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> Result) rethrows
        -> Result
    { try body(parameters) }

    /// A copy of the gradients of the last `backward(_:)`, in `layout` order.
    public var gradientValues: [Float] { Array(gradients) }

    /// Lets `body` read and change the weights in place, in `layout` order, without a copy.
    public func withParameters<R>(_ body: (inout MutableSpan<Float>) throws -> R) rethrows -> R {
        var span = parameters.mutableSpan
        return try body(&span)
    }

    /// Lets `body` change the gradients in place (data-parallel training sums them over
    /// processes between `backward` and the update).
    public func withMutableGradients<R>(_ body: (inout MutableSpan<Float>) throws -> R) rethrows -> R {
        var span = gradients.mutableSpan
        return try body(&span)
    }

    /// Lets `body` read the gradients of the last `backward(_:)` without a copy.
    public func withGradients<R>(_ body: (Span<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(gradients).span)
    }

    /// Sequence `sequence`'s action predictions from the last forward pass, (T, A).
    public func actionPredictions(sequence: Int) -> [Float] {
        rows(of: actionPredictionBuffer, sequence: sequence, width: configuration.actionDimension)
    }

    /// Sequence `sequence`'s next-state predictions from the last complete (not training)
    /// forward pass, (T, S).
    public func statePredictions(sequence: Int) -> [Float] {
        rows(of: statePredictionBuffer, sequence: sequence, width: configuration.stateDimension)
    }

    /// Sequence `sequence`'s return predictions from the last complete forward pass, (T).
    public func returnPredictions(sequence: Int) -> [Float] {
        rows(of: returnPredictionBuffer, sequence: sequence, width: 1)
    }

    /// Lets `body` read the last forward pass's action predictions, (B, T, A), without a
    /// copy.
    public func withActionPredictions<R>(_ body: (Span<Float>) throws -> R) rethrows -> R {
        try body(actionPredictionBuffer.span)
    }

    private func rows(of buffer: UnsafeBufferPointer<Float>, sequence: Int, width: Int) -> [Float] {
        precondition(sequence >= 0 && sequence < lastBatchCount, "sequence \(sequence) of \(lastBatchCount)")
        let perSequence = lastTimesteps * width
        return Array(buffer[(sequence * perSequence)..<((sequence + 1) * perSequence)])
    }
}
