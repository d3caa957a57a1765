// The token embeddings, read by training and acting alike: token 3t of a window is the
// return-to-go, 3t+1 the state, 3t+2 the action, each its linear embedding plus the row of
// the step's timestep in the timestep table.

extension ModelWeights {
    /// Writes every token's embedding of `batch` into `out`, (B, 3T, C) rows.
    func embedAllTokens(_ batch: TrajectoryBatch, into out: UnsafeMutablePointer<Float>, work: ParallelWork) {
        let cfg = configuration
        let (B, T, C, S, A) = (batch.count, batch.timesteps, cfg.embeddingDimension, cfg.stateDimension, cfg.actionDimension)
        let p = UnsafePointer(base)
        batch.states.withUnsafeBufferPointer { states in
            linearForward(
                out: out + C, ldOut: 3 * C, inp: states.baseAddress!, ldIn: S, weight: p + layout.stateWeight,
                bias: p + layout.stateBias, layout: .outIn, N: B * T, I: S, O: C, work: work)
        }
        batch.actions.withUnsafeBufferPointer { actions in
            linearForward(
                out: out + 2 * C, ldOut: 3 * C, inp: actions.baseAddress!, ldIn: A,
                weight: p + layout.actionWeight, bias: p + layout.actionBias, layout: .outIn, N: B * T, I: A, O: C,
                work: work)
        }
        for row in 0..<(B * T) {
            let time = timestepEmbedding(batch.timestepIndices[row])
            let tokens = out + 3 * row * C
            embedReturn(batch.returnsToGo[row], time: time, into: tokens)
            for c in 0..<C {
                tokens[C + c] += time[c]
                tokens[2 * C + c] += time[c]
            }
        }
    }

    /// Writes the embedding of token `token` of sequence `sequence` of `batch` into `out` (C
    /// floats): the one-token form of `embedAllTokens`, for acting steps that add a few tokens.
    func embedToken(_ batch: TrajectoryBatch, sequence: Int, token: Int, into out: UnsafeMutablePointer<Float>) {
        let cfg = configuration
        let C = cfg.embeddingDimension
        let p = UnsafePointer(base)
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
        let p = UnsafePointer(base)
        for c in 0..<configuration.embeddingDimension {
            out[c] = rtg * p[layout.returnWeight + c] + p[layout.returnBias + c] + time[c]
        }
    }

    /// The embedding row of an episode step.
    private func timestepEmbedding(_ timestep: Int32) -> UnsafePointer<Float> {
        precondition(
            timestep >= 0 && timestep < configuration.maxEpisodeLength, "timestep \(timestep) outside the embedding table")
        return UnsafePointer(base) + layout.timestepEmbedding + Int(timestep) * configuration.embeddingDimension
    }
}
