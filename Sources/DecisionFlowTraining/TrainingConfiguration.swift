import DecisionFlow
import DecisionFlowSupport
import Foundation
import RLData

/// Everything that defines a training run, in five groups: the data, the model's
/// hyperparameters (`ModelHyperparameters`, whose defaults are the model's own), the
/// optimization, the bookkeeping and the evaluation during training. Each field is declared,
/// with its default, once, in its group; `configuration.batchSize` reads and writes a group's
/// field as a property of the configuration.
///
/// Presets live in `configs/*.json`: one flat JSON object whose keys are the fields'
/// (`TrainingConfiguration.fields`); every field is optional there and takes its default when
/// absent. `configs/README.md` documents each field. Unknown fields and values of the wrong
/// type are errors, so a typo never silently trains the wrong model.
@dynamicMemberLookup
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    /// What the run trains on.
    public struct DataSettings: Sendable, Equatable {
        /// D4RL files, concatenated in order (e.g. medium then expert). Relative paths are
        /// resolved against the working directory.
        public var datasets: [String] = []
        /// The environment, a name or id of `EnvironmentCatalog` (`RunEnvironment` says how it
        /// meets the one the data names). Default: the data's.
        public var environment: String? = nil
        /// Returns-to-go are divided by this (the reference's `scale`).
        public var rewardScale: Float = 1000
        /// Discount of the returns-to-go (1: undiscounted, as the reference).
        public var discount: Double = 1
        /// How window starts are drawn.
        public var sampling: WindowSampling = .uniformStart
        /// Episode length limit of files without `timeouts` (D4RL v0).
        public var maxEpisodeSteps: Int = 1000
    }

    /// The optimizer and its schedule.
    public struct OptimizationSettings: Sendable, Equatable {
        /// Windows per training step.
        public var batchSize: Int = 64
        /// The learning rate after warmup.
        public var learningRate: Float = 1e-4
        /// AdamW's decoupled weight decay.
        public var weightDecay: Float = 1e-4
        /// Steps of linear learning-rate warmup.
        public var warmupSteps: Int = 10_000
        /// The global gradient norm is clipped to this.
        public var gradientClip: Float = 0.25
        /// Total training steps.
        public var steps: Int = 100_000
    }

    /// Seeds, threads, and how often the run writes.
    public struct BookkeepingSettings: Sendable, Equatable {
        /// Seeds initialization, window sampling and dropout.
        public var seed: UInt64 = 1
        /// Worker threads; results are reproducible for a given seed and thread count.
        public var threads: Int = 2
        /// Write a checkpoint every this many steps (and at the end).
        public var checkpointEvery: Int = 1000
        /// Write a log line every this many steps.
        public var logEvery: Int = 100
    }

    /// Rollouts of the policy while it trains.
    public struct EvaluationSettings: Sendable, Equatable {
        /// Roll the policy out every this many steps (and at the end); 0 turns it off.
        public var evaluateEvery: Int = 0
        /// Episodes per evaluation.
        public var evaluationEpisodes: Int = 10
        /// Target return of the evaluations (environment scale); default: the environment's first
        /// target in the catalog.
        public var evaluationTarget: Double? = nil
    }

    /// What the run trains on.
    public var data = DataSettings()
    /// The model's hyperparameters; its widths come from the data.
    public var model = ModelHyperparameters()
    /// The optimizer and its schedule.
    public var optimization = OptimizationSettings()
    /// Seeds, threads, and how often the run writes.
    public var bookkeeping = BookkeepingSettings()
    /// Rollouts of the policy while it trains.
    public var evaluation = EvaluationSettings()

    /// Creates the default configuration (the Decision Transformer's hyperparameters).
    public init() {}

    /// A field of the data group, as a property of the configuration.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<DataSettings, Value>) -> Value {
        get { data[keyPath: keyPath] }
        set { data[keyPath: keyPath] = newValue }
    }

    /// A model hyperparameter, as a property of the configuration.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<ModelHyperparameters, Value>) -> Value {
        get { model[keyPath: keyPath] }
        set { model[keyPath: keyPath] = newValue }
    }

    /// A field of the optimization group, as a property of the configuration.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<OptimizationSettings, Value>) -> Value {
        get { optimization[keyPath: keyPath] }
        set { optimization[keyPath: keyPath] = newValue }
    }

    /// A field of the bookkeeping group, as a property of the configuration.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<BookkeepingSettings, Value>) -> Value {
        get { bookkeeping[keyPath: keyPath] }
        set { bookkeeping[keyPath: keyPath] = newValue }
    }

    /// A field of the evaluation group, as a property of the configuration.
    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<EvaluationSettings, Value>) -> Value {
        get { evaluation[keyPath: keyPath] }
        set { evaluation[keyPath: keyPath] = newValue }
    }

    /// The model configuration for a dataset with these state and action widths.
    public func modelConfiguration(stateDimension: Int, actionDimension: Int) -> ModelConfiguration {
        ModelConfiguration(model, stateDimension: stateDimension, actionDimension: actionDimension)
    }

    /// Problems that make the configuration unusable, as sentences naming the field.
    public var problems: [String] {
        var result: [String] = []
        if data.datasets.isEmpty { result.append("datasets: name at least one D4RL file") }
        // Whole numbers: at least 1 (or 0), and at most a limit far beyond any CPU run, so
        // nothing computed from them overflows and a typo cannot allocate the machine away.
        for (name, value, lowest, limit) in [
            ("batchSize", optimization.batchSize, 1, 1 << 20), ("steps", optimization.steps, 1, 1 << 40),
            ("threads", bookkeeping.threads, 1, 1_024), ("checkpointEvery", bookkeeping.checkpointEvery, 1, Int.max),
            ("logEvery", bookkeeping.logEvery, 1, Int.max), ("maxEpisodeSteps", data.maxEpisodeSteps, 1, 10_000_000),
            ("evaluateEvery", evaluation.evaluateEvery, 0, Int.max),
            ("evaluationEpisodes", evaluation.evaluationEpisodes, 1, 10_000),
            ("warmupSteps", optimization.warmupSteps, 0, 1 << 40),
        ] {
            if value < lowest { result.append("\(name) must be at least \(lowest) (it is \(value))") }
            if value > limit { result.append("\(name) must be at most \(limit) (it is \(value))") }
        }
        // Real numbers: finite, and positive where a zero or negative value means nothing.
        for (name, value) in [
            ("learningRate", optimization.learningRate), ("rewardScale", data.rewardScale),
            ("gradientClip", optimization.gradientClip),
        ] where !(value.isFinite && value > 0) {
            result.append("\(name) must be a positive finite number (it is \(value))")
        }
        if !(optimization.weightDecay.isFinite && optimization.weightDecay >= 0) {
            result.append("weightDecay must be a finite number ≥ 0 (it is \(optimization.weightDecay))")
        }
        // Not 0: acting recovers each next return-to-go by dividing by the discount.
        if !(data.discount > 0 && data.discount <= 1 && Float(data.discount).isNormal) {
            result.append("discount must be in (0, 1] (it is \(data.discount))")
        }
        if let target = evaluation.evaluationTarget, !target.isFinite {
            result.append("evaluationTarget must be a finite number (it is \(target))")
        }
        if model.contextLength > model.maxEpisodeLength {
            result.append(
                "contextLength \(model.contextLength) exceeds maxEpisodeLength \(model.maxEpisodeLength): a window holds at most one episode; lower contextLength (or raise maxEpisodeLength for longer episodes)"
            )
        }
        // Not configuration fields (never in config.json or a preset): a run keeps the reference's.
        let reference = ModelHyperparameters()
        if model.actionTanh != reference.actionTanh || model.layerNormEpsilon != reference.layerNormEpsilon
            || model.flowEpsilon != reference.flowEpsilon
        {
            result.append(
                "actionTanh, layerNormEpsilon and flowEpsilon are the reference's in a training run (\(reference.actionTanh), \(reference.layerNormEpsilon), \(reference.flowEpsilon)); they cannot be saved with it"
            )
        }
        result += modelConfiguration(stateDimension: 1, actionDimension: 1).problems
        return result
    }

    /// A fingerprint of every field (FNV-1a 64 of the sorted JSON, in hex): equal
    /// fingerprints, equal configurations. What an evaluation records of the run it evaluated.
    public var fingerprint: String {
        var hash = FNV1a64()
        ((try? JSONEncoder.sorted.encode(self)) ?? Data()).withUnsafeBytes { hash.add($0) }
        return hash.hex
    }

    /// The configuration, checked. Each path to training calls it once, where its
    /// configuration is made final: `TrainingRun.start` (before loading data), the public
    /// `Trainer` initializer, a resume once its flags are applied, and a sweep's plan for each
    /// point.
    ///
    /// - Throws: `TrainingError.badConfiguration` naming `source` and the first problem.
    public func validated(source: String) throws -> TrainingConfiguration {
        if let problem = problems.first { throw TrainingError.badConfiguration(file: source, problem: problem) }
        return self
    }

    // MARK: - Reading

    /// Every field name, for rejecting unknown ones.
    static var fieldNames: Set<String> { Set(fields.map(\.name)) }

    /// Reads a JSON configuration. Missing fields take their defaults.
    ///
    /// - Throws: `TrainingError.badConfiguration` naming the file and field for unreadable
    ///   JSON, an unknown field, a value of the wrong type, or an invalid value.
    public static func read(_ path: String) throws -> TrainingConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TrainingError.badConfiguration(
                file: path, problem: FileProblem.describe(error, reading: path))
        }
        return try decode(data, source: path)
    }

    /// Decodes JSON configuration text; `source` names it in errors.
    public static func decode(_ data: Data, source: String) throws -> TrainingConfiguration {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TrainingError.badConfiguration(
                file: source, problem: "is not valid JSON (\(error.localizedDescription))")
        }
        guard let fields = object as? [String: Any] else {
            throw TrainingError.badConfiguration(file: source, problem: "must be a JSON object of fields")
        }
        let known = fieldNames
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            let suggestion = Suggestions.nearest(to: unknown, among: Self.fields.map(\.name))
            throw TrainingError.badConfiguration(
                file: source,
                problem:
                    "has an unknown field '\(unknown)'\(suggestion.map { " (did you mean '\($0)'?)" } ?? ""); configs/README.md lists every field"
            )
        }
        // Foundation keeps the first of a repeated key, Python the last: refused, naming it.
        if let repeated = StrictJSON.firstRepeatedKey(in: data) {
            throw TrainingError.badConfiguration(
                file: source, problem: "gives the field '\(repeated)' twice; give each field once")
        }
        /// A value as the file wrote it: text in quotes, so `"5"` is not shown as the number 5.
        func shown(_ value: Any) -> String {
            if let text = value as? String { return "the text \"\(text)\"" }
            if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) {
                return String(decoding: data, as: UTF8.self)
            }
            return "\(value)"
        }
        /// A field's expectation in words, from the field table ("one of relu, gelu").
        func expectation(_ context: DecodingError.Context, _ type: Any.Type? = nil) -> String {
            let key = context.codingPath.first?.stringValue ?? ""
            let given = fields[key].map { " (it is \(shown($0)))" } ?? ""
            return "field '\(key)' should be \(Self.field(named: key)?.expected ?? type.map(describe) ?? "valid")\(given)"
        }
        do {
            return try JSONDecoder().decode(TrainingConfiguration.self, from: data)
        } catch let DecodingError.typeMismatch(type, context) {
            throw TrainingError.badConfiguration(file: source, problem: expectation(context, type))
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            // A choice that is not one of its values (`"activation": "tanh"`).
            throw TrainingError.badConfiguration(file: source, problem: expectation(context))
        } catch let DecodingError.dataCorrupted(context) {
            // Foundation reports a number that does not fit its field (10.5 for a count, 1e30)
            // without the field's name: find the field by decoding each one alone.
            if context.codingPath.isEmpty {
                for key in fields.keys.sorted() {
                    guard let field = Self.field(named: key),
                        let alone = try? JSONSerialization.data(withJSONObject: [key: fields[key]!])
                    else { continue }
                    if (try? JSONDecoder().decode(TrainingConfiguration.self, from: alone)) == nil {
                        throw TrainingError.badConfiguration(
                            file: source, problem: "field '\(key)' should be \(field.expected) (it is \(shown(fields[key]!)))")
                    }
                }
            }
            throw TrainingError.badConfiguration(
                file: source,
                problem:
                    "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
            )
        } catch let DecodingError.valueNotFound(type, context) {
            throw TrainingError.badConfiguration(
                file: source,
                problem:
                    "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' should be \(describe(type)), not null"
            )
        } catch {
            throw TrainingError.badConfiguration(file: source, problem: "cannot be decoded (\(error))")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: return "a whole number"
        case is Float.Type, is Double.Type: return "a number"
        case is String.Type: return "a string"
        case is [String].Type: return "a list of strings"
        case is [Any].Type: return "a list"
        case is Bool.Type: return "true or false"
        default: return "a \(type)"
        }
    }

    /// Decodes the fields present (`fields` says which there are); absent ones keep their
    /// defaults.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ConfigurationField.FieldKey.self)
        for field in Self.fields { try field.decode(container, &self) }
    }

    /// Encodes every field that is set.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ConfigurationField.FieldKey.self)
        for field in Self.fields { try field.encode(self, &container) }
    }
}

/// Why training could not start or go on.
public enum TrainingError: Error, CustomStringConvertible, Sendable {
    /// A configuration file or value is unusable.
    case badConfiguration(file: String, problem: String)
    /// The configuration disagrees with the data.
    case mismatch(String)
    /// The loss or gradients became NaN or infinite.
    case nonFinite(step: Int, what: String, lastCheckpoint: String?)
    /// A run directory cannot be used as asked.
    case runDirectory(path: String, problem: String)
    /// The processes of a data-parallel run no longer hold the same parameters.
    case ranksDiverged(step: Int, rank: Int, checksums: [String])

    public var description: String {
        switch self {
        case .badConfiguration(let file, let problem): return "\(file): \(problem)"
        case .mismatch(let problem): return problem
        case .nonFinite(let step, let what, let lastCheckpoint):
            return "the \(what) became NaN or infinite at step \(step); training stopped. "
                + (lastCheckpoint.map {
                    "The last good checkpoint, \($0), is intact: lower the learning rate and resume from it."
                }
                    ?? "No checkpoint had been written yet: lower the learning rate and start again.")
        case .runDirectory(let path, let problem): return "\(path): \(problem)"
        case .ranksDiverged(let step, let rank, let checksums):
            return
                "at step \(step) rank \(rank)'s parameters differ from rank 0's (checksums by rank: \(checksums.joined(separator: ", "))); the processes no longer train one model, so training stopped before writing a checkpoint. Resume from the last checkpoint with the same process count, threads and build on every machine"
        }
    }
}
