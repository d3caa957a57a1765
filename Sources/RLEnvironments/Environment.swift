/// A box of per-dimension bounds: an observation or action space.
public struct BoxSpace: Sendable, Equatable {
    /// Lower bound of each dimension (−∞ where unbounded).
    public var lower: [Float]
    /// Upper bound of each dimension (+∞ where unbounded).
    public var upper: [Float]

    /// The number of dimensions.
    public var dimension: Int { lower.count }

    /// A box with these bounds.
    public init(lower: [Float], upper: [Float]) {
        precondition(lower.count == upper.count)
        self.lower = lower
        self.upper = upper
    }

    /// The same bounds in every one of `dimension` dimensions.
    public init(dimension: Int, bound: Float) {
        self.init(
            lower: [Float](repeating: -bound, count: dimension), upper: [Float](repeating: bound, count: dimension))
    }
}

/// What one environment step returns besides its observation, which
/// `step(action:observation:)` writes into the caller's memory.
public struct StepOutcome: Sendable, Equatable {
    /// The step's reward.
    public var reward: Double
    /// The task ended (a fall, a goal reached): no further steps.
    public var terminated: Bool
    /// The time limit ended the episode.
    public var truncated: Bool

    /// Whether the episode is over either way.
    public var isDone: Bool { terminated || truncated }

    /// Creates an outcome; see the properties for the meaning of each value.
    public init(reward: Double, terminated: Bool, truncated: Bool) {
        self.reward = reward
        self.terminated = terminated
        self.truncated = truncated
    }
}

/// What one environment step returns (gymnasium's five-tuple, minus `info`), with the
/// observation in a new array: what the convenience `step(action: [Float])` returns.
public struct StepResult: Sendable, Equatable {
    /// The observation after the step.
    public var observation: [Float]
    /// The step's reward.
    public var reward: Double
    /// The task ended (a fall, a goal reached): no further steps.
    public var terminated: Bool
    /// The time limit ended the episode.
    public var truncated: Bool

    /// Whether the episode is over either way.
    public var isDone: Bool { terminated || truncated }

    /// Creates a result; see the properties for the meaning of each value.
    public init(observation: [Float], reward: Double, terminated: Bool, truncated: Bool) {
        self.observation = observation
        self.reward = reward
        self.terminated = terminated
        self.truncated = truncated
    }
}

/// Why an environment refused a call. Nothing is stepped when one is thrown.
public enum EnvironmentError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The action has the wrong number of values.
    case wrongActionLength(environment: String, expected: Int, got: Int)
    /// The span given for the observation does not hold exactly one observation.
    case wrongObservationLength(environment: String, expected: Int, got: Int)
    /// The action holds NaN or infinity.
    case nonFiniteAction(environment: String, index: Int, value: Float)
    /// A state vector for `setState` has the wrong length or non-finite values.
    case badState(environment: String, problem: String)
    /// `step` was called before `reset`, or after the episode ended.
    case needsReset(environment: String)
    /// No environment of the catalog has this name, id or alias.
    case unknownEnvironment(name: String, closeMatches: [String], known: [String])
    /// The name names no environment exactly but begins several.
    case ambiguousEnvironment(name: String, matches: [String])
    /// An environment's widths disagree with those of `other` (data, a checkpoint, a factory).
    case widthMismatch(
        environment: String, observationWidth: Int, actionWidth: Int, other: String, otherObservationWidth: Int,
        otherActionWidth: Int)
    /// A catalog entry's name, id or alias is already another entry's.
    case alreadyRegistered(name: String, entry: String)
    /// A catalog entry cannot be registered as it is.
    case invalidEntry(name: String, problem: String)
    /// The physics model could not be loaded; MuJoCo's own message is included.
    case badModel(file: String, message: String)

    public var description: String {
        switch self {
        case .wrongActionLength(let environment, let expected, let got):
            return "\(environment): the action has \(got) values, but the action space has \(expected) dimensions"
        case .wrongObservationLength(let environment, let expected, let got):
            return "\(environment): the observation span has room for \(got) values, but observations have \(expected)"
        case .nonFiniteAction(let environment, let index, let value):
            return "\(environment): action component \(index) is \(value); actions must be finite"
        case .badState(let environment, let problem):
            return "\(environment): cannot set the state: \(problem)"
        case .needsReset(let environment):
            return "\(environment): the episode is over (or never started); call reset(seed:) first"
        case .unknownEnvironment(let name, let closeMatches, let known):
            let hint = closeMatches.isEmpty ? "" : "did you mean \(closeMatches.joined(separator: " or "))? "
            return
                "no environment named '\(name)'; \(hint)known: \(known.joined(separator: ", ")) (`d4rl-run environments` lists them; a program adds its own with EnvironmentCatalog.standard.register)"
        case .ambiguousEnvironment(let name, let matches):
            return "'\(name)' could mean \(matches.joined(separator: " or ")); give the full name or id"
        case .widthMismatch(let environment, let observation, let action, let other, let otherObservation, let otherAction):
            return
                "\(environment) has observations of \(observation) and actions of \(action), but \(other) has \(otherObservation) and \(otherAction)"
        case .alreadyRegistered(let name, let entry):
            return "cannot register '\(name)': it already names \(entry)"
        case .invalidEntry(let name, let problem):
            return "cannot register \(name): \(problem)"
        case .badModel(let file, let message):
            return "\(file): MuJoCo could not load the model: \(message)"
        }
    }
}

/// A reinforcement-learning environment with gymnasium's semantics: `reset`, then `step`
/// until `terminated` or `truncated` (the time limit).
///
/// Randomness (the reset noise) comes only from the seed given to `reset(seed:)`, or from the
/// stream it started when the seed is nil.
public protocol Environment: AnyObject {
    /// The environment's id, e.g. `Hopper-v4`, for messages.
    var name: String { get }
    /// The bounds of each observation dimension.
    var observationSpace: BoxSpace { get }
    /// The bounds of each action dimension; `step` clips to them where the task does.
    var actionSpace: BoxSpace { get }
    /// The time limit: `truncated` becomes true after this many steps.
    var maxEpisodeSteps: Int { get }
    /// Steps taken since the last reset.
    var elapsedSteps: Int { get }

    /// Starts an episode and returns its first observation. A seed restarts the random
    /// stream; nil continues it.
    func reset(seed: UInt64?) -> [Float]

    /// Applies `action`, advances the simulation by one environment step, and writes the new
    /// observation into `observation`. Allocates nothing: the form for a simulation's inner
    /// loop (`step(action: [Float])` is the convenience that returns a new array).
    ///
    /// - Throws: `EnvironmentError` for an action of the wrong length or with NaN or
    ///   infinity, an observation span of the wrong length, or when no episode is running;
    ///   nothing is stepped or written then.
    func step(action: Span<Float>, observation: inout MutableSpan<Float>) throws -> StepOutcome

    /// The simulator's full state, as `setState` takes it.
    var state: [Double] { get }

    /// Replaces the simulator's state (to replay recorded data), keeping the step count.
    func setState(_ state: [Double]) throws
}

extension Environment {
    /// Applies `action` and advances the simulation by one environment step, returning the
    /// new observation in a new array. `step(action:observation:)` allocates nothing.
    ///
    /// - Throws: as `step(action:observation:)`.
    public func step(action: [Float]) throws -> StepResult {
        var observation = [Float](repeating: 0, count: observationSpace.dimension)
        var output = observation.mutableSpan
        let outcome = try step(action: action.span, observation: &output)
        return StepResult(
            observation: observation, reward: outcome.reward, terminated: outcome.terminated,
            truncated: outcome.truncated)
    }

    /// Checks an action's length and finiteness and the observation span's length, throwing
    /// the matching error: what every `step` does before it changes anything.
    public func validate(action: Span<Float>, observation: borrowing MutableSpan<Float>) throws {
        guard action.count == actionSpace.dimension else {
            throw EnvironmentError.wrongActionLength(
                environment: name, expected: actionSpace.dimension, got: action.count)
        }
        for index in action.indices where !action[index].isFinite {
            throw EnvironmentError.nonFiniteAction(environment: name, index: index, value: action[index])
        }
        guard observation.count == observationSpace.dimension else {
            throw EnvironmentError.wrongObservationLength(
                environment: name, expected: observationSpace.dimension, got: observation.count)
        }
    }
}
