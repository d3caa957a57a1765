import CBLAS

extension DecisionTransformer {
    /// Computes d loss / d parameters of the last `forward(_:training:)`, which ran on
    /// `batch`, into the gradients (overwriting them). The loss is the masked mean squared
    /// error of the predicted actions against `batch.actions`, so `batch` must still hold what
    /// that pass read.
    ///
    /// Tensors the action loss does not reach (`predict_state`, `predict_return`, the unused
    /// `transformer.wte`) get zeros, and `ParameterLayout.Entry.receivesGradient` is false for
    /// them, so the optimizer leaves them untouched as PyTorch does for a None gradient.
    ///
    /// - Precondition: the model's last forward pass was `forward(batch, training:)` with this
    ///   very batch (not another batch).
    public func backward(_ batch: TrajectoryBatch) {
        backward(batch, normalizingSteps: nil)
    }

    /// `backward(_:)` for a loss normalized by `normalizingSteps` unmasked steps instead of
    /// the batch's own count: with 1, the gradients are those of the summed squared errors
    /// (divided by A), which data-parallel training adds up over processes and then divides by
    /// the global count.
    package func backward(_ batch: TrajectoryBatch, normalizingSteps: Int?) {
        guard let pass = lastFullPass, pass.batch == ObjectIdentifier(batch), pass.count == batch.count,
            pass.timesteps == batch.timesteps
        else {
            preconditionFailure("backward(_:) needs the batch of the model's last forward(_:training:) pass")
        }
        let cfg = configuration
        let B = batch.count
        let T = batch.timesteps
        let L = 3 * T
        let N = B * L
        let (C, S, A, F, H, D) = cfg.letters
        let p = parameterBase
        let g = gradientBase
        let a = activations
        gradients.update(repeating: 0)

        // loss = Σ_masked (pred − target)² / (steps · A); pred = tanh(z)
        var steps = 0
        for row in 0..<(B * T) where batch.mask[row] > 0 { steps += 1 }
        if let normalizingSteps { steps = normalizingSteps }
        let scale: Float = steps == 0 ? 0 : 2 / Float(steps * A)
        for row in 0..<(B * T) {
            for j in 0..<A {
                let index = row * A + j
                let prediction = a.actionPredictions[index]
                var gradient = batch.mask[row] > 0 ? scale * (prediction - batch.actions[index]) : 0
                if cfg.actionTanh { gradient *= 1 - prediction * prediction }
                a.dActionPredictions[index] = gradient
            }
        }
        // A compact pass ran the last block after attention, and ln_f, on the B·T state
        // tokens packed densely; their gradients live in the first B·T rows until expanded.
        let compact = lastPassCompact
        let stateRows = B * T
        let finalRows = compact ? stateRows : N
        // action = predict_action(finalNorm[state tokens])
        a.dNorm.update(repeating: 0, count: N * C)
        linearBackward(
            dinp: a.dNorm + (compact ? 0 : C), ldDinp: compact ? C : 3 * C, dweight: g + layout.predictActionWeight,
            dbias: g + layout.predictActionBias, dout: a.dActionPredictions, ldDout: A,
            inp: a.finalNorm + (compact ? 0 : C), ldIn: compact ? C : 3 * C, weight: p + layout.predictActionWeight,
            layout: .outIn, N: B * T, I: C, O: A, ones: a.ones, work: work)
        // finalNorm = ln_f(residual[last])
        a.dResidual.update(repeating: 0, count: N * C)
        layerNormBackward(
            dinp: a.dResidual, dweight: g + layout.finalNormWeight, dbias: g + layout.finalNormBias, dout: a.dNorm,
            inp: a.residuals[cfg.layerCount], weight: p + layout.finalNormWeight, mean: a.finalNormMean,
            rstd: a.finalNormRstd, N: finalRows, C: C, work: work, partials: a.normPartials)

        for index in stride(from: cfg.layerCount - 1, through: 0, by: -1) {
            let block = layout.blocks[index]
            let buffers = a.blocks[index]
            // The rows after attention: the packed state tokens in a compact pass's last block.
            let packed = compact && index == cfg.layerCount - 1
            let M = packed ? stateRows : N
            // next = residualMid + dropout(c_proj(act(c_fc(ln_2(residualMid)))))
            for i in 0..<(M * C) { a.dProjection[i] = a.dResidual[i] * buffers.mlpResidualMask[i] }
            // The input gradients below are written, not accumulated: each has one source.
            linearBackward(
                dinp: a.dFc, ldDinp: F, dweight: g + block.fcProjectionWeight, dbias: g + block.fcProjectionBias,
                dout: a.dProjection, ldDout: C, inp: buffers.fcActivated, ldIn: F, weight: p + block.fcProjectionWeight,
                layout: .inOut, N: M, I: F, O: C, ones: a.ones, overwritesInputGradient: true, work: work)
            // fcActivated = act(fcPre): the gradient w.r.t. fcPre goes to scratch.
            activationBackward(
                dinp: a.scratch, dout: a.dFc, inp: buffers.fcPre, count: M * F, kind: cfg.activation,
                accumulate: false, work: work)
            linearBackward(
                dinp: a.dNorm, ldDinp: C, dweight: g + block.fcWeight, dbias: g + block.fcBias, dout: a.scratch,
                ldDout: F, inp: buffers.ln2, ldIn: C, weight: p + block.fcWeight, layout: .inOut, N: M, I: C, O: F,
                ones: a.ones, overwritesInputGradient: true, work: work)
            layerNormBackward(
                dinp: a.dResidual, dweight: g + block.ln2Weight, dbias: g + block.ln2Bias, dout: a.dNorm,
                inp: buffers.residualMid, weight: p + block.ln2Weight, mean: buffers.ln2Mean, rstd: buffers.ln2Rstd,
                N: M, C: C, work: work, partials: a.normPartials)

            // residualMid = x + dropout(proj(attention(ln_1(x))))
            let projectionLayout: WeightLayout = cfg.attention == .flow ? .outIn : .inOut
            for i in 0..<(M * C) { a.dProjection[i] = a.dResidual[i] * buffers.attentionResidualMask[i] }
            // Packed, only the state rows are written: the rest must read zero.
            if packed { a.dAttentionOutput.update(repeating: 0, count: N * C) }
            linearBackward(
                dinp: a.dAttentionOutput + (packed ? C : 0), ldDinp: packed ? 3 * C : C,
                dweight: g + block.projectionWeight, dbias: g + block.projectionBias, dout: a.dProjection, ldDout: C,
                inp: buffers.attentionOutput + (packed ? C : 0), ldIn: packed ? 3 * C : C,
                weight: p + block.projectionWeight, layout: projectionLayout, N: M, I: C, O: C, ones: a.ones,
                overwritesInputGradient: !packed, work: work)
            if packed { expandStateRows(a.dResidual, stateRows: stateRows, C: C) }
            a.dQKV.update(repeating: 0, count: N * 3 * C)
            let pairs = AttentionPairs(
                kind: cfg.attention, H: H, L: L, C: C, D: D, eps: cfg.flowEpsilon, qkv: buffers.qkv,
                output: a.dAttentionOutput, beforeAllocation: buffers.beforeAllocation, cache: buffers.attentionCache,
                dropMask: buffers.attentionDropMask, tokenMask: a.scratch, dqkv: a.dQKV, flowScratch: flowScratch,
                softmaxScratch: softmaxScratch)
            pairs.run(AttentionPairs.backward, count: B * H, work: work)
            linearBackward(
                dinp: a.dNorm, ldDinp: C, dweight: g + block.qkvWeight, dbias: g + block.qkvBias, dout: a.dQKV,
                ldDout: 3 * C, inp: buffers.ln1, ldIn: C, weight: p + block.qkvWeight, layout: projectionLayout, N: N,
                I: C, O: 3 * C, ones: a.ones, overwritesInputGradient: true, work: work)
            layerNormBackward(
                dinp: a.dResidual, dweight: g + block.ln1Weight, dbias: g + block.ln1Bias, dout: a.dNorm,
                inp: a.residuals[index], weight: p + block.ln1Weight, mean: buffers.ln1Mean, rstd: buffers.ln1Rstd,
                N: N, C: C, work: work, partials: a.normPartials)
        }

        // residual[0] = dropout(embed_ln(stacked))
        for i in 0..<(N * C) { a.dNorm[i] = a.dResidual[i] * a.embedDropMask[i] }
        a.dStacked.update(repeating: 0, count: N * C)
        layerNormBackward(
            dinp: a.dStacked, dweight: g + layout.embedNormWeight, dbias: g + layout.embedNormBias, dout: a.dNorm,
            inp: a.stacked, weight: p + layout.embedNormWeight, mean: a.embedNormMean, rstd: a.embedNormRstd, N: N,
            C: C, work: work, partials: a.normPartials)
        // stacked[3t] = rtg·W_R + b_R + time; [3t+1] = W_s·s + b_s + time; [3t+2] = W_a·a + b_a + time
        for row in 0..<(B * T) {
            let tokens = a.dStacked + 3 * row * C
            let rtg = batch.returnsToGo[row]
            let time = g + layout.timestepEmbedding + Int(batch.timestepIndices[row]) * C
            for c in 0..<C {
                g[layout.returnWeight + c] += tokens[c] * rtg
                g[layout.returnBias + c] += tokens[c]
                time[c] += tokens[c] + tokens[C + c] + tokens[2 * C + c]
            }
        }
        batch.states.withUnsafeBufferPointer { states in
            linearBackward(
                dinp: nil, ldDinp: 0, dweight: g + layout.stateWeight, dbias: g + layout.stateBias,
                dout: a.dStacked + C, ldDout: 3 * C, inp: states.baseAddress!, ldIn: S, weight: p + layout.stateWeight,
                layout: .outIn, N: B * T, I: S, O: C, ones: a.ones, work: work)
        }
        batch.actions.withUnsafeBufferPointer { actions in
            linearBackward(
                dinp: nil, ldDinp: 0, dweight: g + layout.actionWeight, dbias: g + layout.actionBias,
                dout: a.dStacked + 2 * C, ldDout: 3 * C, inp: actions.baseAddress!, ldIn: A,
                weight: p + layout.actionWeight, layout: .outIn, N: B * T, I: A, O: C, ones: a.ones, work: work)
        }
    }

    /// The global L2 norm of all gradients, accumulated in Double.
    public func gradientNorm() -> Float { globalNorm(UnsafeBufferPointer(gradients)) }

    /// Spreads the gradient of packed state-token rows (the first `stateRows` rows of
    /// `buffer`) to their places in the interleaved (R, s, a) layout, row 3r + 1, with zeros
    /// for the return and action tokens, which reached the loss only through attention. In
    /// place, from the last row back: row r moves to rows ≥ r, never over an unread one.
    private func expandStateRows(_ buffer: UnsafeMutablePointer<Float>, stateRows: Int, C: Int) {
        for row in stride(from: stateRows - 1, through: 0, by: -1) {
            (buffer + (3 * row + 1) * C).update(from: buffer + row * C, count: C)
            (buffer + 3 * row * C).update(repeating: 0, count: C)
            (buffer + (3 * row + 2) * C).update(repeating: 0, count: C)
        }
    }
}
