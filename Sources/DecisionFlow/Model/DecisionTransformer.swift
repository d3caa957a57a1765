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
    /// Where each named tensor lives in the weights and gradients.
    public let layout: ParameterLayout
    /// All weights, in `layout` order (the buffer the passes read).
    var parameters: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: parameterBase, count: layout.count)
    }
    /// d loss / d parameters from the last `backward(_:)`, in `layout` order.
    var gradients: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: gradientBase, count: layout.count)
    }
    let parameterBase: UnsafeMutablePointer<Float>
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

    /// Creates a model with fresh weights: GPT-2's initialization inside the transformer
    /// (normal(0, 0.02) weights, zero biases, unit LayerNorms) and PyTorch's defaults for the
    /// embeddings and heads, as the reference gets them.
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
    public init(
        configuration: ModelConfiguration, batchCapacity: Int, seed: UInt64, threads: Int = 2,
        flowChunkLength: Int? = nil
    ) {
        precondition(configuration.problems.isEmpty, configuration.problems.joined(separator: "; "))
        precondition(batchCapacity > 0)
        self.configuration = configuration
        layout = ParameterLayout(configuration: configuration)
        parameterBase = .allocate(capacity: layout.count)
        parameterBase.initialize(repeating: 0, count: layout.count)
        gradientBase = .allocate(capacity: layout.count)
        gradientBase.initialize(repeating: 0, count: layout.count)
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
        var generator = RandomGenerator(seed: seed)
        initializeWeights(&generator)
    }

    deinit {
        parameterBase.deallocate()
        gradientBase.deallocate()
        softmaxScratch?.deallocate()
    }

    /// The chunk length of causal Flow-Attention.
    public var flowChunkLength: Int { flowScratch[0].chunk }

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
    /// - Parameters:
    ///   - batch: the windows to run, filled by the caller.
    ///   - training: applies dropout (with `dropoutGenerator`) and computes only what the
    ///     action loss and `backward()` need: after the last block's attention, only the state
    ///     tokens (the action is predicted from them), and no state or return predictions.
    ///     Without it the pass is deterministic, dropout-free and complete.
    @discardableResult
    public func forward(_ batch: TrajectoryBatch, training: Bool = false) -> Float {
        forward(batch, training: training, reuse: .none, actionsOnly: training)
    }

    /// Runs the model on `batch` without dropout, and keeps in `recurrence` each sequence's
    /// running Flow-Attention state after every token but its last (the action placeholder
    /// of a policy's window), so `forwardAppending` can continue the sequences.
    ///
    /// - Precondition: flow attention; `batch.count` ≤ `recurrence.capacity`.
    public func forward(_ batch: TrajectoryBatch, recurrence: FlowRecurrence) {
        forward(batch, training: false, reuse: .recurrent(recurrence, firstToken: 0))
    }

    /// Continues sequences whose earlier tokens are folded into `recurrence`: runs only tokens
    /// `firstToken…` of each sequence of `batch` (which holds the sequences' last
    /// `batch.timesteps` steps; tokens before `firstToken` are ignored) and folds all of them
    /// but the last into the state. Each token costs O(layers · (C² + D²)), however long the
    /// sequence already is. Only each sequence's last action prediction is computed.
    ///
    /// A policy whose window grew by one step passes its last two steps with `firstToken` 2:
    /// the previous step's action token (the placeholder, now the action taken), then the
    /// new step's return-to-go, state and action placeholder.
    ///
    /// - Precondition: flow attention; the last two tokens (state, action) are in range.
    package func forwardAppending(_ batch: TrajectoryBatch, firstToken: Int, recurrence: FlowRecurrence) {
        precondition(firstToken >= 1 && firstToken <= 3 * batch.timesteps - 2, "firstToken \(firstToken) out of range")
        forward(batch, training: false, reuse: .recurrent(recurrence, firstToken: firstToken))
    }

    /// Forward passes run so far; lets a caller that reuses activations check that nobody
    /// else ran the model in between.
    package private(set) var forwardCount = 0

    /// What a forward pass may take over from earlier passes.
    enum RowReuse {
        /// Nothing: every token of every sequence is computed.
        case none
        /// Token rows before `firstRow` keep the activations of the previous pass, which must
        /// have run on the same single sequence with unchanged inputs there; their keys stay
        /// in the buffers for attention to read (softmax `DecisionPolicy`).
        case inPlace(firstRow: Int)
        /// Everything before `firstToken` is folded into `recurrence` (flow attention).
        case recurrent(FlowRecurrence, firstToken: Int)
    }

    /// The forward pass. Row-wise stages run on one contiguous range of token rows: all of
    /// them; rows `firstRow…` in place; or, for `.recurrent`, the `R = L − firstToken` new
    /// tokens of each sequence packed as (B, R).
    ///
    /// With `actionsOnly` (a full pass), everything after the last block's attention runs on
    /// the state tokens alone, packed as (B·T, C) rows: only they reach the action loss.
    @discardableResult
    func forward(_ batch: TrajectoryBatch, training: Bool, reuse: RowReuse, actionsOnly: Bool = false) -> Float {
        forwardCount += 1
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

        // first: the first token computed in each sequence; R: tokens computed per sequence;
        // base: the first buffer row computed; rows: buffer rows computed, from base on.
        var first = 0
        var base = 0
        var recurrence: FlowRecurrence?
        switch reuse {
        case .none: break
        case .inPlace(let firstRow):
            precondition(B == 1 && !training && firstRow < L, "row reuse is for one sequence, without dropout")
            first = firstRow
            base = firstRow
        case .recurrent(let states, let firstToken):
            precondition(cfg.attention == .flow && !training && B <= states.capacity && firstToken < L)
            precondition(states.layerCount == cfg.layerCount && states.headDimension == D)
            first = firstToken
            recurrence = states
            if firstToken == 0 { for b in 0..<B { states.clear(sequence: b) } }
        }
        let R = L - first
        let rows = B * R
        // The last block after attention, and the final LayerNorm, on state tokens only.
        let compact = actionsOnly && first == 0 && recurrence == nil
        let stateRows = B * T

        // Embeddings: token 3t is the return-to-go, 3t+1 the state, 3t+2 the action; each is its
        // linear embedding plus the timestep's embedding row.
        if recurrence == nil || first == 0 {
            embedAllTokens(batch)
        } else {
            for b in 0..<B {
                for token in first..<L { embedToken(batch, sequence: b, token: token, into: a.stacked + (b * R + token - first) * C) }
            }
        }
        layerNormForward(
            out: a.embedNorm + base * C, mean: a.embedNormMean + base, rstd: a.embedNormRstd + base,
            inp: a.stacked + base * C, weight: p + layout.embedNormWeight, bias: p + layout.embedNormBias, N: rows,
            C: C, eps: cfg.layerNormEpsilon, work: work)
        dropoutForward(
            out: a.residuals[0] + base * C, mask: a.embedDropMask + base * C, inp: a.embedNorm + base * C,
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
                out: buffers.ln1 + base * C, mean: buffers.ln1Mean + base, rstd: buffers.ln1Rstd + base,
                inp: x + base * C, weight: p + block.ln1Weight, bias: p + block.ln1Bias, N: rows, C: C,
                eps: cfg.layerNormEpsilon, work: work)
            let projectionLayout: WeightLayout = cfg.attention == .flow ? .outIn : .inOut
            linearForward(
                out: buffers.qkv + base * 3 * C, ldOut: 3 * C, inp: buffers.ln1 + base * C, ldIn: C,
                weight: p + block.qkvWeight, bias: p + block.qkvBias, layout: projectionLayout, N: rows, I: C,
                O: 3 * C, work: work)
            if cfg.attention == .softmax {
                // Drawn in order before the parallel region, so results do not depend on threads.
                dropoutMask(
                    buffers.attentionDropMask, count: B * H * L * L, probability: dropout, generator: &dropoutGenerator,
                    work: work)
            }
            let pairs = AttentionPairs(
                kind: cfg.attention, H: H, L: recurrence == nil ? L : R, C: C, D: D, eps: cfg.flowEpsilon,
                qkv: buffers.qkv, output: buffers.attentionOutput, beforeAllocation: buffers.beforeAllocation,
                cache: buffers.attentionCache, dropMask: buffers.attentionDropMask, tokenMask: tokenMask,
                dqkv: a.dQKV, flowScratch: flowScratch, softmaxScratch: softmaxScratch,
                firstRow: recurrence == nil ? first : 0, recurrence: recurrence?.layer(index))
            pairs.run(AttentionPairs.forward, count: B * H, work: work)
            // From here on the block runs on `postRows` rows from `postBase`: all computed
            // rows, or, in the last block of a compact pass, the state tokens packed densely.
            let packed = compact && index == cfg.layerCount - 1
            let postBase = packed ? 0 : base
            let postRows = packed ? stateRows : rows
            let postRange = (postBase * C)..<((postBase + postRows) * C)
            linearForward(
                out: a.dProjection + postBase * C, ldOut: C,
                inp: buffers.attentionOutput + (packed ? C : base * C), ldIn: packed ? 3 * C : C,
                weight: p + block.projectionWeight, bias: p + block.projectionBias, layout: projectionLayout,
                N: postRows, I: C, O: C, work: work)
            dropoutForward(
                out: a.dProjection + postBase * C, mask: buffers.attentionResidualMask + postBase * C,
                inp: a.dProjection + postBase * C, count: postRows * C, probability: dropout,
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
                out: buffers.ln2 + postBase * C, mean: buffers.ln2Mean + postBase, rstd: buffers.ln2Rstd + postBase,
                inp: buffers.residualMid + postBase * C, weight: p + block.ln2Weight, bias: p + block.ln2Bias,
                N: postRows, C: C, eps: cfg.layerNormEpsilon, work: work)
            linearForward(
                out: buffers.fcPre + postBase * F, ldOut: F, inp: buffers.ln2 + postBase * C, ldIn: C,
                weight: p + block.fcWeight, bias: p + block.fcBias, layout: .inOut, N: postRows, I: C, O: F,
                work: work)
            activationForward(
                out: buffers.fcActivated + postBase * F, inp: buffers.fcPre + postBase * F, count: postRows * F,
                kind: cfg.activation, work: work)
            linearForward(
                out: a.dProjection + postBase * C, ldOut: C, inp: buffers.fcActivated + postBase * F, ldIn: F,
                weight: p + block.fcProjectionWeight, bias: p + block.fcProjectionBias, layout: .inOut, N: postRows,
                I: F, O: C, work: work)
            dropoutForward(
                out: a.dProjection + postBase * C, mask: buffers.mlpResidualMask + postBase * C,
                inp: a.dProjection + postBase * C, count: postRows * C, probability: dropout,
                generator: &dropoutGenerator, work: work)
            let next = a.residuals[index + 1]
            for index in postRange { next[index] = buffers.residualMid[index] + a.dProjection[index] }
        }

        let finalBase = compact ? 0 : base
        let finalRows = compact ? stateRows : rows
        layerNormForward(
            out: a.finalNorm + finalBase * C, mean: a.finalNormMean + finalBase, rstd: a.finalNormRstd + finalBase,
            inp: a.residuals[cfg.layerCount] + finalBase * C, weight: p + layout.finalNormWeight,
            bias: p + layout.finalNormBias, N: finalRows, C: C, eps: cfg.layerNormEpsilon, work: work)

        lastBatchCount = B
        lastTimesteps = T
        if first > 0 {
            // Only each sequence's last action: from its last state token, row R − 2 of its rows.
            linearForward(
                out: a.actionPredictions + (T - 1) * A, ldOut: T * A, inp: a.finalNorm + (base + R - 2) * C,
                ldIn: R * C, weight: p + layout.predictActionWeight, bias: p + layout.predictActionBias,
                layout: .outIn, N: B, I: C, O: A, work: work)
            if cfg.actionTanh {
                for b in 0..<B {
                    let action = a.actionPredictions + (b * T + T - 1) * A
                    for j in 0..<A { action[j] = tanhf(action[j]) }
                }
            }
            lastFullPass = nil
            return 0
        }

        // Heads: the action from each state token, the next state and return from each action token.
        linearForward(
            out: a.actionPredictions, ldOut: A, inp: a.finalNorm + (compact ? 0 : C), ldIn: compact ? C : 3 * C,
            weight: p + layout.predictActionWeight,
            bias: p + layout.predictActionBias, layout: .outIn, N: B * T, I: C, O: A, work: work)
        if cfg.actionTanh {
            for index in 0..<(B * T * A) { a.actionPredictions[index] = tanhf(a.actionPredictions[index]) }
        }
        lastPassCompact = compact
        lastFullPass = recurrence == nil ? (ObjectIdentifier(batch), B, T) : nil
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

    /// Writes every token's embedding into `stacked`, (B, 3T, C).
    private func embedAllTokens(_ batch: TrajectoryBatch) {
        let cfg = configuration
        let (B, T, C, S, A) = (batch.count, batch.timesteps, cfg.embeddingDimension, cfg.stateDimension, cfg.actionDimension)
        let p = UnsafePointer(parameterBase)
        let a = activations
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
            let time = timestepEmbedding(batch.timestepIndices[row])
            let rtg = batch.returnsToGo[row]
            let tokens = a.stacked + 3 * row * C
            embedReturn(rtg, time: time, into: tokens)
            for c in 0..<C {
                tokens[C + c] += time[c]
                tokens[2 * C + c] += time[c]
            }
        }
    }

    /// Writes the embedding of token `token` of sequence `sequence` into `out` (C floats): the
    /// one-token form of `embedAllTokens`, for passes that add a few tokens.
    private func embedToken(_ batch: TrajectoryBatch, sequence: Int, token: Int, into out: UnsafeMutablePointer<Float>) {
        let cfg = configuration
        let C = cfg.embeddingDimension
        let p = UnsafePointer(parameterBase)
        let row = sequence * batch.timesteps + token / 3
        let time = timestepEmbedding(batch.timestepIndices[row])
        func linear(_ weight: Int, _ bias: Int, _ input: UnsafePointer<Float>, _ width: Int) {
            for c in 0..<C { out[c] = vectorDot(p + weight + c * width, input, count: width) + p[bias + c] + time[c] }
        }
        switch token % 3 {
        case 0:
            embedReturn(batch.returnsToGo[row], time: time, into: out)
        case 1:
            let S = cfg.stateDimension
            batch.states.withUnsafeBufferPointer { linear(layout.stateWeight, layout.stateBias, $0.baseAddress! + row * S, S) }
        default:
            let A = cfg.actionDimension
            batch.actions.withUnsafeBufferPointer {
                linear(layout.actionWeight, layout.actionBias, $0.baseAddress! + row * A, A)
            }
        }
    }

    /// out = rtg · W_R + b_R + time: a return-to-go token's embedding.
    private func embedReturn(_ rtg: Float, time: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let p = UnsafePointer(parameterBase)
        for c in 0..<configuration.embeddingDimension {
            out[c] = rtg * p[layout.returnWeight + c] + p[layout.returnBias + c] + time[c]
        }
    }

    /// The embedding row of an episode step.
    private func timestepEmbedding(_ timestep: Int32) -> UnsafePointer<Float> {
        precondition(
            timestep >= 0 && timestep < configuration.maxEpisodeLength, "timestep \(timestep) outside the embedding table")
        return UnsafePointer(parameterBase) + layout.timestepEmbedding + Int(timestep) * configuration.embeddingDimension
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

    /// Sequence `sequence`'s action predictions from the last forward pass, (T, A). After a
    /// `forwardAppending` only the last step's action is computed; the others are stale.
    public func actionPredictions(sequence: Int) -> [Float] {
        rows(of: actionPredictionBuffer, sequence: sequence, width: configuration.actionDimension)
    }

    /// Sequence `sequence`'s next-state predictions from the last complete (not training,
    /// not recurrent) forward pass, (T, S).
    public func statePredictions(sequence: Int) -> [Float] {
        rows(of: statePredictionBuffer, sequence: sequence, width: configuration.stateDimension)
    }

    /// Sequence `sequence`'s return predictions from the last complete forward pass, (T).
    public func returnPredictions(sequence: Int) -> [Float] {
        rows(of: returnPredictionBuffer, sequence: sequence, width: 1)
    }

    /// Lets `body` read the last forward pass's action predictions, (B, T, A), without a
    /// copy: for callers acting every step, such as batched evaluation.
    public func withActionPredictions<R>(_ body: (Span<Float>) throws -> R) rethrows -> R {
        try body(actionPredictionBuffer.span)
    }

    private func rows(of buffer: UnsafeBufferPointer<Float>, sequence: Int, width: Int) -> [Float] {
        precondition(sequence >= 0 && sequence < lastBatchCount, "sequence \(sequence) of \(lastBatchCount)")
        let perSequence = lastTimesteps * width
        return Array(buffer[(sequence * perSequence)..<((sequence + 1) * perSequence)])
    }
}

extension String {
    /// `x.bias` → `x.weight`, for finding a bias's fan-in.
    fileprivate func replacingBias() -> String {
        hasSuffix(".bias") ? String(dropLast(".bias".count)) + ".weight" : self
    }
}
