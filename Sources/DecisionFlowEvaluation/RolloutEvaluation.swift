import DecisionFlow
import RLData
import RLEnvironments

/// One finished episode.
public struct EpisodeResult: Codable, Sendable, Equatable {
    /// The undiscounted return.
    public var episodeReturn: Double
    /// Steps taken.
    public var length: Int

    /// Creates a result; see the properties for the meaning of each value.
    public init(episodeReturn: Double, length: Int) {
        self.episodeReturn = episodeReturn
        self.length = length
    }
}

/// One target's scores: what `evaluation.json` and a results table keep of a `TargetReport`.
public struct TargetScores: Codable, Sendable, Equatable {
    /// The target return, in the environment's reward scale.
    public var target: Double
    /// Episodes rolled out (`episodes` in `evaluation.json`).
    public var episodeCount: Int
    /// Mean undiscounted return.
    public var returnMean: Double
    /// Population standard deviation of the returns.
    public var returnStd: Double
    /// Mean D4RL normalized score ×100, when the environment has reference scores.
    public var normalizedMean: Double?
    /// Population standard deviation of the normalized scores ×100.
    public var normalizedStd: Double?

    private enum CodingKeys: String, CodingKey {
        case target, episodeCount = "episodes", returnMean, returnStd, normalizedMean, normalizedStd
    }

    /// The scores of `episodes` rolled out for `target`; the normalized ones when `scores`
    /// (the environment's D4RL references) are given.
    public init(target: Double, episodes: [EpisodeResult], scores: D4RLReferenceScores?) {
        self.target = target
        episodeCount = episodes.count
        let returns = SummaryStatistics(episodes.map(\.episodeReturn))
        returnMean = returns.mean
        returnStd = returns.std
        if let scores {
            let normalized = SummaryStatistics(episodes.map { scores.normalize($0.episodeReturn) })
            normalizedMean = normalized.mean
            normalizedStd = normalized.std
        }
    }
}

/// The episodes run for one target return, with their scores. Its scores' fields read as its
/// own (`report.returnMean`, `report.episodeCount`).
@dynamicMemberLookup
public struct TargetReport: Encodable, Sendable {
    /// The summary kept in `evaluation.json`.
    public var scores: TargetScores
    /// Every episode's result, in seed order.
    public var episodes: [EpisodeResult]
    /// Mean episode length.
    public var lengthMean: Double

    /// The report of `episodes` rolled out for `target`, with normalized scores when `scores`
    /// (the environment's `EnvironmentEntry.referenceScores`) are given.
    public init(target: Double, episodes: [EpisodeResult], scores: D4RLReferenceScores?) {
        self.scores = TargetScores(target: target, episodes: episodes, scores: scores)
        self.episodes = episodes
        lengthMean = SummaryStatistics(episodes.map { Double($0.length) }).mean
    }

    /// The scores' fields, as the report's own.
    public subscript<Value>(dynamicMember keyPath: KeyPath<TargetScores, Value>) -> Value { scores[keyPath: keyPath] }

    private enum CodingKeys: String, CodingKey {
        case target, episodes, returnMean, returnStd, lengthMean, normalizedMean, normalizedStd
    }

    /// One flat object (`evaluate --json`): the scores' fields, the episodes and lengthMean.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scores.target, forKey: .target)
        try container.encode(episodes, forKey: .episodes)
        try container.encode(scores.returnMean, forKey: .returnMean)
        try container.encode(scores.returnStd, forKey: .returnStd)
        try container.encode(lengthMean, forKey: .lengthMean)
        try container.encodeIfPresent(scores.normalizedMean, forKey: .normalizedMean)
        try container.encodeIfPresent(scores.normalizedStd, forKey: .normalizedStd)
    }
}

/// Runs a Decision Transformer in an environment with the reference's evaluation protocol
/// (see `PolicyHistory`), many episodes at once: one `DecisionPolicy` acting for every
/// episode, so a step is one batched pass over the live episodes (see `DecisionPolicy` for
/// how growing and sliding windows are computed).
///
/// Episode i resets its own environment with seed `seed + i`. Every sequence of a batch is
/// computed independently (the model never mixes sequences), so the episodes are those of
/// running them one by one through a one-agent `DecisionPolicy`: the same lengths and returns
/// equal to rounding (tested). Not bit for bit: OpenBLAS rounds a row of a product
/// differently depending on how many rows the product has.
public enum RolloutEvaluation {
    /// Runs `environments.count` episodes aiming for `target`.
    ///
    /// - Parameters:
    ///   - weights: the policy's weights, read in place (a training run's, mid-run).
    ///   - encoding: how the model's inputs are encoded (the checkpoint's).
    ///   - environments: one environment per episode, reset here.
    ///   - target: the target return, in the environment's reward scale.
    ///   - seed: episode i resets with seed + i.
    ///   - threads: worker threads of the policy's passes.
    ///   - progress: called after every environment step with (finished episodes, steps taken).
    public static func run(
        weights: ModelWeights, encoding: ContextEncoding, environments: [any Environment], target: Double,
        seed: UInt64, threads: Int, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [EpisodeResult] {
        let c = weights.configuration
        let count = environments.count
        guard count > 0 else { return [] }
        if let problem = encoding.problem(for: c) { throw EvaluationError.encoding(problem) }
        for environment in environments {
            guard environment.observationSpace.dimension == c.stateDimension,
                environment.actionSpace.dimension == c.actionDimension
            else {
                throw EvaluationError.shapeMismatch(
                    environment: environment.name, observation: environment.observationSpace.dimension,
                    action: environment.actionSpace.dimension, model: c)
            }
        }
        let (S, A) = (c.stateDimension, c.actionDimension)
        let policy = DecisionPolicy(weights: weights, encoding: encoding, agents: count, threads: threads)
        var observations = [Float](repeating: 0, count: count * S)
        var actions = [Float](repeating: 0, count: count * A)
        var rewards = [Float](repeating: 0, count: count)
        var action = [Float](repeating: 0, count: A)
        var results = [EpisodeResult](repeating: EpisodeResult(episodeReturn: 0, length: 0), count: count)
        for (index, environment) in environments.enumerated() {
            let observation = environment.reset(seed: seed &+ UInt64(index))
            for j in 0..<S { observations[index * S + j] = observation[j] }
            try policy.reset(agent: index, targetReturn: Float(target))
        }
        var live = count
        var steps = 0
        while live > 0 {
            var output = actions.mutableSpan
            try policy.act(observations: observations.span, into: &output)
            for episode in 0..<count where try policy.isActive(agent: episode) {
                for j in 0..<A { action[j] = actions[episode * A + j] }
                let result = try environments[episode].step(action: action)
                results[episode].episodeReturn += result.reward
                results[episode].length += 1
                if result.isDone {
                    try policy.finish(agent: episode)
                    live -= 1
                } else {
                    rewards[episode] = Float(result.reward)
                    for j in 0..<S { observations[episode * S + j] = result.observation[j] }
                }
            }
            try policy.record(rewards: rewards.span)
            steps += 1
            progress(count - live, steps)
        }
        return results
    }

    /// Runs the episodes one at a time through `policy` (the sequential reference for `run`).
    public static func runSequentially(
        policy: DecisionPolicy, environments: [any Environment], target: Double, seed: UInt64
    ) throws -> [EpisodeResult] {
        try environments.enumerated().map { index, environment in
            var observation = environment.reset(seed: seed &+ UInt64(index))
            policy.reset(targetReturn: Float(target))
            var result = EpisodeResult(episodeReturn: 0, length: 0)
            while true {
                let step = try environment.step(action: try policy.action(for: observation))
                result.episodeReturn += step.reward
                result.length += 1
                if step.isDone { return result }
                policy.record(reward: Float(step.reward))
                observation = step.observation
            }
        }
    }
}

/// Why an evaluation could not run.
public enum EvaluationError: Error, CustomStringConvertible, Sendable {
    /// The environment's observation or action width differs from the model's.
    case shapeMismatch(environment: String, observation: Int, action: Int, model: ModelConfiguration)
    /// The context encoding does not fit the model.
    case encoding(String)
    /// The checkpoint names no environment, and none was given.
    case noEnvironment(file: String)
    /// The checkpoint names an environment the catalog does not know, and none was given.
    case unknownEnvironment(file: String, name: String, problem: String)
    /// A saved evaluation (`evaluation.json`) cannot be read or is not one.
    case unreadable(path: String, problem: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let problem):
            return "\(path): \(problem)"
        case .unknownEnvironment(let file, let name, let problem):
            return
                "\(file) names environment '\(name)', which is not in the environment catalog (\(problem)); evaluate it in a known one (evaluate --env NAME; `d4rl-run environments` lists them), or register it in your program"
        case .noEnvironment(let file):
            return "\(file) does not name the environment its policy acts in; name one (evaluate --env)"
        case .shapeMismatch(let environment, let observation, let action, let model):
            return
                "\(environment) has observations of \(observation) and actions of \(action), but the checkpoint's model takes states of \(model.stateDimension) and actions of \(model.actionDimension): evaluate it in the environment it was trained for"
        case .encoding(let problem):
            return "the context encoding does not fit the model: \(problem)"
        }
    }
}
