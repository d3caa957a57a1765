import DecisionFlow
import DecisionFlowSupport
import Foundation

/// One field of `TrainingConfiguration`, described once. The JSON keys of presets, the
/// `train` flags, `train --help` and the field table of `configs/README.md` are all derived
/// from `TrainingConfiguration.fields`, so a new field is a stored property plus one entry
/// there (a test checks that every property has one, and that the README's table is current).
public struct ConfigurationField {
    /// The JSON key and Swift property name (`learningRate`).
    public let name: String
    /// The flag, without dashes: the name in kebab case (`learning-rate`) unless given.
    public let flag: String
    /// One line for `--help`.
    public let help: String
    /// The default, as the README's table shows it: the default configuration's value, or
    /// for a field that is unset by default, what then applies.
    public let defaultText: String
    /// The full description, for the README's table.
    public let documentation: String
    /// What the flag takes, for `--help`: `<number>`, `<flow|softmax>`, `<file> ...`.
    public let valueHint: String
    /// What the field takes, in words, for messages: "a whole number".
    public let expected: String
    /// Whether the flag takes several values (up to the next flag).
    public let takesList: Bool
    /// Whether `train --resume` may change it. Fields that decide what is learned (data,
    /// model, batch, seed, regularization) cannot change without breaking the run; the
    /// schedule, clipping, bookkeeping, evaluation and threads can.
    public let changeableOnResume: Bool

    let decode: (KeyedDecodingContainer<FieldKey>, inout TrainingConfiguration) throws -> Void
    let encode: (TrainingConfiguration, inout KeyedEncodingContainer<FieldKey>) throws -> Void
    /// Sets the field from a flag's values; returns what is wrong with them, if anything.
    let set: ([String], inout TrainingConfiguration) -> String?

    /// A field at `keyPath`. Its default is `TrainingConfiguration()`'s value there; `absent`
    /// says what applies when that value is unset (nil, or an empty list), and only then.
    init<Value: ConfigurationValue>(
        _ keyPath: WritableKeyPath<TrainingConfiguration, Value>, _ name: String, flag: String? = nil,
        resumable: Bool = false, help: String, absent: String? = nil, _ documentation: String
    ) {
        self.name = name
        changeableOnResume = resumable
        self.flag = flag ?? Self.kebabCase(name)
        self.help = help
        let value = TrainingConfiguration()[keyPath: keyPath]
        precondition(
            (value.tableText == nil) == (absent != nil), "\(name): say what applies exactly when the default is unset")
        defaultText = value.tableText ?? absent ?? ""
        self.documentation = documentation
        valueHint = Value.valueHint
        expected = Value.expected
        takesList = Value.takesList
        let key = FieldKey(name)
        decode = { container, configuration in
            // Present means set: a null for a field that has no "unset" is an error, not the default.
            if container.contains(key) { configuration[keyPath: keyPath] = try container.decode(Value.self, forKey: key) }
        }
        encode = { configuration, container in try configuration[keyPath: keyPath].encodeField(to: &container, key: key) }
        set = { values, configuration in
            guard let value = Value.parse(values) else { return "takes \(Value.expected)" }
            configuration[keyPath: keyPath] = value
            return nil
        }
    }

    /// `learningRate` → `learning-rate`.
    static func kebabCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                result += "-" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// A dynamic coding key: the field's name.
    struct FieldKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

extension TrainingConfiguration {
    /// Every field, in the order presets, `--help` and the README list them.
    public static var fields: [ConfigurationField] {
        [
            // Data
            ConfigurationField(
                \.data.datasets, "datasets", flag: "dataset", help: "D4RL files or Minari datasets, concatenated in order.",
                absent: "(required)",
                "D4RL-schema HDF5 files or Minari datasets (a dataset folder, or an id such as `mujoco/hopper/medium-v0` under `$MINARI_DATASETS_PATH`, default `~/.minari/datasets`), concatenated in order (for example a medium file then an expert file). Relative paths are resolved against the working directory."
            ),
            ConfigurationField(
                \.data.environment, "environment",
                help: "Environment to score and evaluate in: a name or gymnasium id.",
                absent: "the one the data names (`metadata/behavior/env_id`, Minari's `env_spec`)",
                "A name or gymnasium id of the environment catalog (`d4rl-run environments` lists them): where the run is evaluated, and whose D4RL reference scores normalize returns. A task without a version (`walker2d`, as the presets say) gets the version the data was recorded in (Minari's `Walker2d-v5` data: the v5 walker); a version (`Walker2d-v4`) or another task is followed as written, with a warning when the data names another. It must match the data's observation and action widths, or training refuses to start."
            ),
            ConfigurationField(
                \.data.rewardScale, "rewardScale", help: "Returns-to-go are divided by this.",
                "Returns-to-go are divided by this before they enter the model (the reference's `scale`)."),
            ConfigurationField(
                \.data.discount, "discount", help: "Discount of the returns-to-go.",
                "Discount of the returns-to-go, in (0, 1]; 1 is the reference's undiscounted return. The checkpoint records it, and acting follows the same rule: rtg[t+1] = (rtg[t] − r[t]) / discount."),
            ConfigurationField(
                \.data.sampling, "sampling", help: "How window starts are drawn.",
                "How window starts are drawn: `uniform-start` makes every step of every trajectory equally likely (the reference's precomputed windows); `length-weighted` picks a trajectory in proportion to its length, then a start within it (the original Decision Transformer's procedure: the same distribution, another random stream)."
            ),
            ConfigurationField(
                \.data.maxEpisodeSteps, "maxEpisodeSteps", help: "Episode limit for files without timeouts (D4RL v0).",
                "For files without `timeouts` (D4RL v0): an episode that never terminates ends after this many steps."),
            // Model
            ConfigurationField(
                \.model.attention, "attention", help: "flow (Decision-Flowformer) or softmax (Decision Transformer).",
                "`flow`: causal Flow-Attention (Decision-Flowformer). `softmax`: GPT-2's causal softmax attention (Decision Transformer). Flow pads short windows on the right, softmax on the left, as their reference implementations do."
            ),
            ConfigurationField(
                \.model.contextLength, "contextLength", help: "Context length K in timesteps.",
                "K, timesteps per window; the model sees 3K tokens. At most `maxEpisodeLength` (a window holds at most one episode); `train` warns when K exceeds every episode in the data, since the extra steps are only padding."
            ),
            ConfigurationField(
                \.model.embeddingDimension, "embeddingDimension", help: "Embedding width.",
                "Width of every token."),
            ConfigurationField(
                \.model.layerCount, "layerCount", help: "Transformer blocks.", "Transformer blocks."),
            ConfigurationField(
                \.model.headCount, "headCount", help: "Attention heads.",
                "Attention heads; must divide `embeddingDimension`."),
            ConfigurationField(
                \.model.mlpDimension, "mlpDimension", help: "MLP width (default 4 × embedding width).",
                absent: "4 × `embeddingDimension`", "Width of each block's MLP."),
            ConfigurationField(
                \.model.activation, "activation", help: "MLP activation.",
                "The MLP's non-linearity: `relu` (the reference's) or `gelu` (GPT-2's tanh approximation)."),
            ConfigurationField(
                \.model.dropout, "dropout", help: "Dropout probability.",
                "Dropout after the embeddings, after each attention output projection and after each MLP."),
            ConfigurationField(
                \.model.maxEpisodeLength, "maxEpisodeLength", help: "Timestep embedding rows (episode length limit).", "Rows of the timestep embedding; timesteps past it are clamped to the last row."),
            // Optimization
            ConfigurationField(
                \.optimization.batchSize, "batchSize", help: "Sequences per batch.", "Windows per step."),
            ConfigurationField(
                \.optimization.learningRate, "learningRate", resumable: true, help: "Peak learning rate.",
                "AdamW's peak learning rate."),
            ConfigurationField(
                \.optimization.weightDecay, "weightDecay", help: "AdamW weight decay.",
                "AdamW's decoupled weight decay, applied to every trained tensor (as the reference does)."),
            ConfigurationField(
                \.optimization.warmupSteps, "warmupSteps", resumable: true, help: "Linear warmup steps.",
                "The learning rate rises linearly to its peak over these steps, then stays."),
            ConfigurationField(
                \.optimization.gradientClip, "gradientClip", resumable: true, help: "Global gradient-norm clip.",
                "Gradients are scaled so their global L2 norm is at most this."),
            ConfigurationField(
                \.optimization.steps, "steps", resumable: true, help: "Total training steps.",
                "Total training steps (the reference: 10 iterations of 10k)."),
            // Bookkeeping
            ConfigurationField(
                \.bookkeeping.seed, "seed", help: "Random seed (weights, windows, dropout).",
                "Seeds the weights, the window sampler and dropout. With the same seed and `threads`, a run repeats bit for bit."
            ),
            ConfigurationField(
                \.bookkeeping.threads, "threads", resumable: true,
                help: "Worker threads; a run repeats bit for bit for a given seed and thread count.",
                "Worker threads. Results depend on it (products are split differently), so keep it fixed to reproduce a run."
            ),
            ConfigurationField(
                \.bookkeeping.checkpointEvery, "checkpointEvery", resumable: true, help: "Checkpoint every this many steps.",
                "`checkpoint.safetensors` is replaced (atomically) every this many steps and at the end."),
            ConfigurationField(
                \.bookkeeping.logEvery, "logEvery", resumable: true, help: "Log every this many steps.",
                "A `log.jsonl` line every this many steps: mean loss since the previous line, learning rate, gradient norm, elapsed seconds, steps per second."
            ),
            // Evaluation during training
            ConfigurationField(
                \.evaluation.evaluateEvery, "evaluateEvery", resumable: true,
                help: "Roll the policy out every this many steps and at the end (0: never).",
                "Roll the policy out in the environment every this many steps and at the end, and log its D4RL normalized score (`normalized_score` in `log.jsonl`; `plot` draws it). 0 turns it off. Needs an environment with D4RL scores."
            ),
            ConfigurationField(
                \.evaluation.evaluationEpisodes, "evaluationEpisodes", resumable: true, help: "Episodes per evaluation during training.", "Episodes per evaluation during training (seeds 0 to n − 1)."),
            ConfigurationField(
                \.evaluation.evaluationTarget, "evaluationTarget", resumable: true,
                help: "Target return of those rollouts, in the environment's reward scale.",
                absent: "the reference's first target",
                "Target return of those evaluations, in the environment's scale (the environment's first target in `d4rl-run environments`: hopper 3600, for example)."
            ),
        ]
    }

    /// The field named `name`.
    public static func field(named name: String) -> ConfigurationField? { fields.first { $0.name == name } }

    /// The field whose flag is `flag` (without dashes).
    public static func field(flag: String) -> ConfigurationField? { fields.first { $0.flag == flag } }

    /// Sets `field` from a flag's values.
    ///
    /// - Throws: `TrainingError.badConfiguration` naming the flag and what it takes.
    public mutating func set(_ field: ConfigurationField, values: [String]) throws {
        if let problem = field.set(values, &self) {
            let given = values.isEmpty ? "nothing" : "'\(values.joined(separator: " "))'"
            throw TrainingError.badConfiguration(file: "--\(field.flag)", problem: "\(problem), not \(given)")
        }
    }

    /// The one rule for what `--resume` may change: of `fields`, those it may not (the ones
    /// that decide what is learned: data, model, batch, seed, regularization).
    public static func fixedOnResume(_ fields: [ConfigurationField]) -> [ConfigurationField] {
        fields.filter { !$0.changeableOnResume }
    }

    /// The flags `--resume` accepts, for messages.
    public static var resumableFlags: String {
        fields.filter(\.changeableOnResume).map { "--\($0.flag)" }.joined(separator: ", ")
    }

    /// The fields whose values differ between `self` and `other`, in table order.
    public func fieldsChanged(from other: TrainingConfiguration) -> [ConfigurationField] {
        func values(_ configuration: TrainingConfiguration) -> NSDictionary {
            let data = (try? JSONEncoder.sorted.encode(configuration)) ?? Data()
            return ((try? JSONSerialization.jsonObject(with: data)) as? NSDictionary) ?? [:]
        }
        let (mine, theirs) = (values(self), values(other))
        return Self.fields.filter { field in
            let a = mine[field.name] as? NSObject
            let b = theirs[field.name] as? NSObject
            return a != b
        }
    }

    /// The value of `field` as JSON text, for messages.
    public func text(of field: ConfigurationField) -> String {
        let data = (try? JSONEncoder.sorted.encode(self)) ?? Data()
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard let value = object?[field.name] else { return "unset" }
        if let list = value as? [Any] { return list.map { "\($0)" }.joined(separator: " ") }
        return "\(value)"
    }

    /// The README's field table, in Markdown.
    public static var fieldTableMarkdown: String {
        var lines = ["| field | flag | default | `--resume` may change it | meaning |", "|---|---|---|---|---|"]
        for field in fields {
            lines.append(
                "| `\(field.name)` | `--\(field.flag)` | \(field.defaultText) | \(field.changeableOnResume ? "yes" : "no") | \(field.documentation) |"
            )
        }
        return lines.joined(separator: "\n")
    }
}

// MARK: - Values

/// A type a configuration field can hold: decoded from JSON, parsed from flag text.
protocol ConfigurationValue: Codable {
    /// The value of a flag's arguments, or nil when they do not spell one.
    static func parse(_ values: [String]) -> Self?
    /// What the flag takes, in words ("a whole number").
    static var expected: String { get }
    static var valueHint: String { get }
    static var takesList: Bool { get }
    /// Writes the value under `key`; an unset optional writes nothing.
    func encodeField<Key: CodingKey>(to container: inout KeyedEncodingContainer<Key>, key: Key) throws
    /// The value as the README's table shows a default; nil when unset.
    var tableText: String? { get }
}

extension ConfigurationValue {
    static var takesList: Bool { false }
    var tableText: String? { "\(self)" }
    func encodeField<Key: CodingKey>(to container: inout KeyedEncodingContainer<Key>, key: Key) throws {
        try container.encode(self, forKey: key)
    }
}

/// A value spelled by a single flag argument.
protocol ScalarConfigurationValue: ConfigurationValue {
    init?(text: String)
}

extension ScalarConfigurationValue {
    static func parse(_ values: [String]) -> Self? {
        values.count == 1 ? Self(text: values[0]) : nil
    }
}

extension Int: ScalarConfigurationValue {
    init?(text: String) { self.init(text) }
    static var expected: String { "a whole number" }
    static var valueHint: String { "<n>" }
}

extension UInt64: ScalarConfigurationValue {
    init?(text: String) { self.init(text) }
    static var expected: String { "a whole number from 0 to 2^64 − 1" }
    static var valueHint: String { "<n>" }
}

extension Float: ScalarConfigurationValue {
    init?(text: String) { self.init(text) }
    static var expected: String { "a number" }
    static var valueHint: String { "<number>" }
    var tableText: String? { numberText(self) }
}

extension Double: ScalarConfigurationValue {
    init?(text: String) { self.init(text) }
    static var expected: String { "a number" }
    static var valueHint: String { "<number>" }
    var tableText: String? { numberText(self) }
}

extension String: ScalarConfigurationValue {
    init?(text: String) { self = text }
    static var expected: String { "a name" }
    static var valueHint: String { "<name>" }
    var tableText: String? { "`\(self)`" }
}

/// A real number as the README's table shows it: a whole number without a fraction (1000,
/// not 1000.0), any other as its own type prints it (a Float's 0.0001, not the Double nearest).
private func numberText<Number: BinaryFloatingPoint & CustomStringConvertible>(_ value: Number) -> String {
    value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
}

/// Named choices: `flow`, `softmax`.
protocol ChoiceConfigurationValue: ScalarConfigurationValue, RawRepresentable<String>, CaseIterable {}

extension ChoiceConfigurationValue {
    var tableText: String? { "`\(rawValue)`" }
    init?(text: String) { self.init(rawValue: text) }
    static var expected: String { "one of " + allCases.map(\.rawValue).joined(separator: ", ") }
    static var valueHint: String { "<" + allCases.map(\.rawValue).joined(separator: "|") + ">" }
}

extension AttentionKind: ChoiceConfigurationValue {}
extension Activation: ChoiceConfigurationValue {}
extension WindowSampling: ChoiceConfigurationValue {}

extension Optional: ConfigurationValue where Wrapped: ScalarConfigurationValue {
    var tableText: String? { self?.tableText }
    static func parse(_ values: [String]) -> Wrapped?? { Wrapped.parse(values).map { .some($0) } }
    static var expected: String { Wrapped.expected }
    static var valueHint: String { Wrapped.valueHint }
    func encodeField<Key: CodingKey>(to container: inout KeyedEncodingContainer<Key>, key: Key) throws {
        try container.encodeIfPresent(self, forKey: key)
    }
}

extension Array: ConfigurationValue where Element == String {
    var tableText: String? { isEmpty ? nil : map { "`\($0)`" }.joined(separator: " ") }
    static func parse(_ values: [String]) -> [String]? { values.isEmpty ? nil : values }
    static var expected: String { "one or more files" }
    static var valueHint: String { "<file> ..." }
    static var takesList: Bool { true }
}
