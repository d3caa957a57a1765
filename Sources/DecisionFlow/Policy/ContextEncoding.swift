import Foundation

/// How raw steps become the model's input: the reference protocol's state normalization,
/// return-to-go scaling, timestep clamping and padding side, in one place.
///
/// Training windows, `DecisionPolicy` and batched evaluation all write their inputs through
/// `writeWindow`, so what a model sees when it acts is by construction what it saw when it
/// learned. A checkpoint stores the encoding once (`Checkpoint.encoding`).
///
/// The protocol (FACTS.md, Flowformer_RL):
/// - a state feature j becomes (s − stateMean[j]) / stateScale[j], where stateScale is the
///   training data's std + 1e-6;
/// - returns-to-go are divided by `rewardScale`; at evaluation time the return-to-go starts
///   at target / scale and drops by reward / scale after every step; with a `discount` γ < 1
///   (not the reference's: it is undiscounted) training's returns-to-go are discounted sums,
///   rtg[t] = r[t] + γ·rtg[t+1], so acting applies the same rule backwards,
///   rtg[t+1] = (rtg[t] − r[t]) / γ;
/// - a timestep t becomes min(t, maxTimestep), a row of the timestep embedding;
/// - a window shorter than the batch's timesteps is padded on `padding`'s side with
///   states 0, actions −10, returns-to-go 0, timesteps 0 and mask 0.
public struct ContextEncoding: Codable, Sendable, Equatable {
    /// Which side of a short window the padding goes on.
    public enum Padding: String, Codable, Sendable {
        /// Real steps first: the reference's choice for flow attention (causal, so the real
        /// tokens never see the padding).
        case right
        /// Real steps last: the original Decision Transformer's choice, with a key mask.
        case left

        /// The side the reference pads on for `attention`.
        public static func reference(for attention: AttentionKind) -> Padding {
            attention == .flow ? .right : .left
        }
    }

    /// Per-feature state mean.
    public var stateMean: [Float]
    /// Per-feature divisor: the training data's std + 1e-6, as the reference normalizes.
    public var stateScale: [Float]
    /// Returns-to-go are divided by this.
    public var rewardScale: Float
    /// The largest timestep index: the model's timestep table has maxTimestep + 1 rows.
    public var maxTimestep: Int
    /// Where padding goes in windows shorter than the batch.
    public var padding: Padding
    /// The discount γ of the returns-to-go, in (0, 1]: training sums rewards with it, and
    /// acting undoes it step by step (`nextReturnToGo(after:from:)`). 1, the reference's, by
    /// default and for every checkpoint written before it was recorded.
    public var discount: Double = 1

    /// Creates an encoding; see the properties for the meaning of each value.
    public init(
        stateMean: [Float], stateScale: [Float], rewardScale: Float, maxTimestep: Int, padding: Padding,
        discount: Double = 1
    ) {
        self.stateMean = stateMean
        self.stateScale = stateScale
        self.rewardScale = rewardScale
        self.maxTimestep = maxTimestep
        self.padding = padding
        self.discount = discount
    }

    /// The reference encoding for a model: timesteps clamped to its table, padding on its
    /// attention's side.
    public init(
        stateMean: [Float], stateScale: [Float], rewardScale: Float, for model: ModelConfiguration, discount: Double = 1
    ) {
        self.init(
            stateMean: stateMean, stateScale: stateScale, rewardScale: rewardScale,
            maxTimestep: model.maxEpisodeLength - 1, padding: .reference(for: model.attention), discount: discount)
    }

    private enum CodingKeys: String, CodingKey {
        case stateMean, stateScale, rewardScale, maxTimestep, padding, discount
    }

    /// Reads an encoding; one without `discount` (written before it was recorded) has 1.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            stateMean: try container.decode([Float].self, forKey: .stateMean),
            stateScale: try container.decode([Float].self, forKey: .stateScale),
            rewardScale: try container.decode(Float.self, forKey: .rewardScale),
            maxTimestep: try container.decode(Int.self, forKey: .maxTimestep),
            padding: try container.decode(Padding.self, forKey: .padding),
            discount: try container.decodeIfPresent(Double.self, forKey: .discount) ?? 1)
    }

    /// Writes the encoding; `discount` only when it is not 1, so undiscounted encodings are
    /// written exactly as before it existed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(stateMean, forKey: .stateMean)
        try container.encode(stateScale, forKey: .stateScale)
        try container.encode(rewardScale, forKey: .rewardScale)
        try container.encode(maxTimestep, forKey: .maxTimestep)
        try container.encode(padding, forKey: .padding)
        if discount != 1 { try container.encode(discount, forKey: .discount) }
    }

    /// No state normalization (mean 0, divisor 1): states are fed raw.
    public static func identity(for model: ModelConfiguration, rewardScale: Float = 1) -> ContextEncoding {
        ContextEncoding(
            stateMean: [Float](repeating: 0, count: model.stateDimension),
            stateScale: [Float](repeating: 1, count: model.stateDimension), rewardScale: rewardScale, for: model)
    }

    /// State width.
    public var stateDimension: Int { stateMean.count }

    /// Feature `feature` of a raw state, normalized.
    @inline(__always)
    public func normalized(_ value: Float, feature: Int) -> Float {
        (value - stateMean[feature]) / stateScale[feature]
    }

    /// A return (a target, a reward or a return-to-go) in the model's scale.
    @inline(__always)
    public func scaledReturn(_ value: Float) -> Float { value / rewardScale }

    /// The return-to-go of the next step, in the model's scale, from this step's
    /// (`scaledReturnToGo`) and the reward received (in the environment's scale): the
    /// training rule rtg[t] = r[t] + γ·rtg[t+1], solved for rtg[t+1]. With γ = 1, the
    /// reference's subtraction exactly.
    ///
    /// With γ < 1, a return the episode falls short of (or exceeds) grows by 1/γ a step, as the
    /// rule says: a target should then be a discounted return. It is held within ±10³⁰ so the
    /// model's input stays finite however long the episode.
    @inline(__always)
    public func nextReturnToGo(after reward: Float, from scaledReturnToGo: Float) -> Float {
        let remaining = scaledReturnToGo - scaledReturn(reward)
        if discount == 1 { return remaining }
        return min(max(remaining / Float(discount), -1e30), 1e30)
    }

    /// The timestep embedding row of episode step `step`.
    @inline(__always)
    public func timestepIndex(_ step: Int) -> Int32 { Int32(min(step, maxTimestep)) }

    /// Writes consecutive steps of one episode into sequence `sequence` of `batch`, padded to
    /// `batch.timesteps` on `padding`'s side.
    ///
    /// - Parameters:
    ///   - batch: the batch to write into.
    ///   - sequence: the batch slot to fill.
    ///   - states: the steps' raw states, (n, S) row-major.
    ///   - actions: their actions, (n, A).
    ///   - scaledReturnsToGo: their returns-to-go, already through `scaledReturn` (training data
    ///     scales its per-row sums once; a rollout keeps its running value in this scale, as the
    ///     reference does). n = its count, 1 ≤ n ≤ batch.timesteps.
    ///   - firstTimestep: the episode step of the first of them.
    public func writeWindow(
        into batch: TrajectoryBatch, sequence: Int, states: UnsafeBufferPointer<Float>,
        actions: UnsafeBufferPointer<Float>, scaledReturnsToGo: UnsafeBufferPointer<Float>, firstTimestep: Int
    ) {
        let K = batch.timesteps
        let S = batch.stateDimension
        let A = batch.actionDimension
        let length = scaledReturnsToGo.count
        precondition(
            length >= 1 && length <= K && states.count == length * S && actions.count == length * A
                && S == stateDimension,
            "a window of \(length) steps does not fit \(K) timesteps of width \(S), \(A)")
        let offset = padding == .right ? 0 : K - length  // where the real steps begin
        let base = sequence * K
        for slot in 0..<K {
            let index = base + slot
            let step = slot - offset
            guard step >= 0 && step < length else {
                for j in 0..<S { batch.states[index * S + j] = 0 }
                for j in 0..<A { batch.actions[index * A + j] = -10 }
                batch.returnsToGo[index] = 0
                batch.timestepIndices[index] = 0
                batch.mask[index] = 0
                continue
            }
            for j in 0..<S { batch.states[index * S + j] = normalized(states[step * S + j], feature: j) }
            for j in 0..<A { batch.actions[index * A + j] = actions[step * A + j] }
            batch.returnsToGo[index] = scaledReturnsToGo[step]
            batch.timestepIndices[index] = timestepIndex(firstTimestep + step)
            batch.mask[index] = 1
        }
    }

    /// The problem with using this encoding for `model`, if any.
    public func problem(for model: ModelConfiguration) -> String? {
        guard stateMean.count == model.stateDimension, stateScale.count == model.stateDimension else {
            return
                "its state normalization has \(stateMean.count) means and \(stateScale.count) divisors, but the model takes states of \(model.stateDimension)"
        }
        guard maxTimestep >= 0, maxTimestep < model.maxEpisodeLength else {
            return "its maxTimestep \(maxTimestep) is outside the model's timestep table (0..<\(model.maxEpisodeLength))"
        }
        guard rewardScale.isFinite, rewardScale > 0 else {
            return "its rewardScale \(rewardScale) is not a positive finite number"
        }
        guard discount > 0, discount <= 1, Float(discount).isNormal else {
            return "its discount \(discount) is outside (0, 1]; acting divides by it to follow the discounted returns-to-go"
        }
        if let bad = stateScale.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            return "its state divisor (std) at feature \(bad) is \(stateScale[bad]); every divisor must be a positive finite number"
        }
        if let bad = stateMean.firstIndex(where: { !$0.isFinite }) {
            return "its state mean at feature \(bad) is \(stateMean[bad]), not a finite number"
        }
        return nil
    }
}

/// Where a window's tokens sit: each step is three tokens, its return-to-go, its state and
/// its action, in that order, so a window of T steps is 3T tokens. While acting, the newest
/// step's action token holds a placeholder (zeros) for the action being chosen, which is
/// read from that step's state token.
///
/// Acting code asks here rather than counting tokens itself.
enum WindowTokens {
    /// Tokens per step.
    static let perStep = 3
    /// The token of a step that carries its return-to-go, its state, its action.
    static let returnToGo = 0, state = 1, action = 2

    /// Tokens in a window of `steps` steps.
    static func count(steps: Int) -> Int { perStep * steps }

    /// The token of step `step` of a window (0-based) of kind `token`.
    static func index(step: Int, _ token: Int) -> Int { perStep * step + token }

    /// The token the action of the newest of `steps` steps is read from.
    static func decision(steps: Int) -> Int { index(step: steps - 1, state) }

    /// The tokens a step changes in a window that grew by it: the previous step's action
    /// token (its placeholder, now the action taken), then the new step's three tokens. As
    /// tokens of the window's last two steps: `appended` of the 2·perStep.
    static let appended = index(step: 0, action)..<count(steps: 2)
}
