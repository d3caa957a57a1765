import DecisionFlow
import DecisionFlowSupport
import Foundation

/// A saved model: its weights under the reference's state-dict names, its configuration, and
/// optionally its context encoding, the environment it acts in, the optimizer state and any
/// other strings (training progress) a caller wants to keep with it.
///
/// On disk it is a safetensors file. The header's `__metadata__` holds:
/// - `format`: `decisionflow-checkpoint/2`;
/// - `configuration`: the `ModelConfiguration` as JSON;
/// - `checksum`: FNV-1a 64 of every other metadata entry (sorted by key) and of the whole
///   data section, checked on every read before anything in the file is trusted. Version 1
///   files (DecisionFlow 0.1) checksummed the tensors only; they still load, with a note;
/// - `optimizer`: AdamW's settings and step as JSON, when the moments are saved (tensors
///   `optimizer.exp_avg/<name>` and `optimizer.exp_avg_sq/<name>`, PyTorch's names);
/// - `policy`: the `ContextEncoding`'s fields and `environment`, as one JSON object. Files
///   written before the encoding existed hold only stateMean, stateScale, rewardScale and
///   environment there; they read with the model's reference timestep limit and padding side;
/// - every entry of `metadata`.
///
/// The weights alone (the tensors without a prefix) form a PyTorch state dict that the
/// reference implementation loads with `load_state_dict`.
public struct Checkpoint: Sendable {
    /// The model's shape.
    public var configuration: ModelConfiguration
    /// The weights, in `ParameterLayout(configuration:)` order.
    public var parameters: [Float]
    /// The optimizer, if saved.
    public var optimizer: AdamW?
    /// How the model's inputs are encoded, if saved: what a policy needs besides the weights.
    public var encoding: ContextEncoding?
    /// The environment the policy acts in (`hopper`, ...), if known.
    public var environment: String?
    /// Caller-defined strings saved beside the weights.
    public var metadata: [String: String]
    /// What a reader should know about how this file was verified (for example, that an old
    /// format's checksum does not cover its header); empty for a current file.
    public internal(set) var notes: [String] = []
    /// The checksum the file it was read from carries (verified on reading): what identifies
    /// these exact contents, for records that refer to them (a run's `evaluation.json`); nil
    /// for a checkpoint made in memory.
    public internal(set) var checksum: String?

    static let format = "decisionflow-checkpoint/2"
    /// DecisionFlow 0.1's format: its checksum covers the tensors, not the header.
    static let formatWithoutHeaderChecksum = "decisionflow-checkpoint/1"
    static let policyKey = "policy"
    static let reservedKeys: Set<String> = ["format", "configuration", "checksum", "optimizer", policyKey]

    /// A checkpoint of `model` (and `optimizer`, `encoding` and `environment`, if given).
    public init(
        model: DecisionTransformer, optimizer: AdamW? = nil, encoding: ContextEncoding? = nil,
        environment: String? = nil, metadata: [String: String] = [:]
    ) {
        configuration = model.configuration
        parameters = model.parameterValues
        self.optimizer = optimizer
        self.encoding = encoding
        self.environment = environment
        self.metadata = metadata
    }

    /// The file beside `path` that `write(to:)` fills before renaming it over `path`, in
    /// process `process` (its pid): a killed write leaves it behind.
    public static func temporaryPath(for path: String, process: String) -> String {
        AtomicFile.temporaryPath(for: path, process: process)
    }

    /// Writes the checkpoint atomically: `path` holds either the previous file or this one.
    ///
    /// - Throws: `FileWriteError` (DecisionFlowSupport) naming `path` when it cannot be
    ///   written; the previous file, if any, is intact.
    public func write(to path: String) throws {
        let layout = ParameterLayout(configuration: configuration)
        var header: [String: String] = metadata.filter { !Self.reservedKeys.contains($0.key) }
        header["format"] = Self.format
        header["configuration"] = String(decoding: try JSONEncoder.sorted.encode(configuration), as: UTF8.self)
        if encoding != nil || environment != nil {
            header[Self.policyKey] = String(
                decoding: try JSONEncoder.sorted.encode(PolicyEntry(encoding: encoding, environment: environment)),
                as: UTF8.self)
        }
        let data = try parameters.withUnsafeBufferPointer { weights in
            try (optimizer?.firstMoment ?? []).withUnsafeBufferPointer { first in
                try (optimizer?.secondMoment ?? []).withUnsafeBufferPointer { second in
                    var tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = []
                    for entry in layout.entries {
                        tensors.append((entry.name, entry.shape, UnsafeBufferPointer(rebasing: weights[entry.range])))
                    }
                    if let optimizer {
                        header["optimizer"] = String(
                            decoding: try JSONEncoder.sorted.encode(OptimizerHeader(optimizer)), as: UTF8.self)
                        for entry in layout.entries {
                            tensors.append(
                                (
                                    "optimizer.exp_avg/\(entry.name)", entry.shape,
                                    UnsafeBufferPointer(rebasing: first[entry.range])
                                ))
                            tensors.append(
                                (
                                    "optimizer.exp_avg_sq/\(entry.name)", entry.shape,
                                    UnsafeBufferPointer(rebasing: second[entry.range])
                                ))
                        }
                    }
                    // The checksum covers every other header entry, then the data section in
                    // the order it is written.
                    var checksum = FNV1a64()
                    checksum.add(metadata: header)
                    for tensor in tensors { checksum.add(UnsafeRawBufferPointer(tensor.values)) }
                    header["checksum"] = checksum.hex
                    return try Safetensors.serialize(tensors, metadata: header)
                }
            }
        }
        try AtomicFile.write(data, to: path)
    }

    /// Reads and verifies a checkpoint.
    ///
    /// - Throws: `CheckpointError` when the file is missing, truncated, corrupted (checksum
    ///   mismatch), not a DecisionFlow checkpoint, or inconsistent with its configuration.
    public static func read(_ path: String) throws -> Checkpoint {
        do {
            return try decode(try Safetensors.read(path), source: path)
        } catch let error as SafetensorsError {
            throw CheckpointError(file: path, problem: "is not a readable checkpoint: \(error.problem)")
        }
    }

    /// Parses and verifies the bytes of a checkpoint file; `source` names it in errors.
    public static func parse(_ data: Data, source: String) throws -> Checkpoint {
        do {
            return try decode(try Safetensors.parse(data, file: source), source: source)
        } catch let error as SafetensorsError {
            throw CheckpointError(file: source, problem: "is not a readable checkpoint: \(error.problem)")
        }
    }

    private static func decode(_ contents: Safetensors.Contents, source path: String) throws -> Checkpoint {
        var metadata = contents.metadata
        let current = metadata["format"] == format
        guard current || metadata["format"] == formatWithoutHeaderChecksum else {
            throw CheckpointError(
                file: path,
                problem:
                    "is not a DecisionFlow checkpoint (format '\(metadata["format"] ?? "none")'); to use a PyTorch state dict, run `d4rl-run import`"
            )
        }
        if current {
            // Verified before any header value is trusted with an allocation.
            var checksum = FNV1a64()
            checksum.add(metadata: metadata)
            contents.body.withUnsafeBytes { checksum.add($0) }
            guard metadata["checksum"] == checksum.hex else {
                throw CheckpointError(
                    file: path,
                    problem:
                        "fails its checksum (stored \(metadata["checksum"] ?? "none"), computed \(checksum.hex)); the file is corrupt or was edited: use an earlier checkpoint"
                )
            }
        }
        let configuration: ModelConfiguration
        do {
            configuration = try JSONDecoder().decode(
                ModelConfiguration.self, from: Data((metadata["configuration"] ?? "").utf8))
        } catch {
            throw CheckpointError(
                file: path, problem: "has no readable configuration in its header; the file is corrupt")
        }
        guard configuration.problems.isEmpty else {
            throw CheckpointError(
                file: path, problem: "holds an invalid configuration: \(configuration.problems.joined(separator: "; "))"
            )
        }
        let layout = ParameterLayout(configuration: configuration)
        func gather(_ prefix: String) throws -> [Float] {
            var values = [Float](repeating: 0, count: layout.count)
            for entry in layout.entries {
                guard let tensor = contents.tensors[prefix + entry.name] else {
                    throw CheckpointError(
                        file: path,
                        problem: "has no tensor '\(prefix + entry.name)', which its configuration needs; the file is corrupt")
                }
                guard tensor.shape == entry.shape else {
                    throw CheckpointError(
                        file: path,
                        problem:
                            "tensor '\(prefix + entry.name)' has shape \(tensor.shape), but its configuration needs \(entry.shape); the file is corrupt"
                    )
                }
                guard tensor.dtype == .float32 else {
                    throw CheckpointError(
                        file: path,
                        problem:
                            "tensor '\(prefix + entry.name)' is stored as \(tensor.dtype.rawValue), but a checkpoint holds F32 tensors; the file is corrupt or was edited (to load weights of another type, use `d4rl-run import`)"
                    )
                }
                try tensor.requireFinite(name: prefix + entry.name, file: path)
                values.replaceSubrange(entry.range, with: tensor.values)
            }
            return values
        }
        let expected = Set(
            layout.entries.map(\.name)
                + (metadata["optimizer"] == nil
                    ? [] : layout.entries.flatMap { ["optimizer.exp_avg/\($0.name)", "optimizer.exp_avg_sq/\($0.name)"] }))
        if let extra = contents.tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw CheckpointError(
                file: path,
                problem: "holds tensor '\(extra)', which its configuration has no place for; the file is corrupt or was edited")
        }
        var checkpoint = Checkpoint(
            configuration: configuration, parameters: try gather(""), optimizer: nil, metadata: [:])
        if let json = metadata[policyKey] {
            let entry: PolicyEntry
            do {
                entry = try JSONDecoder().decode(PolicyEntry.self, from: Data(json.utf8))
            } catch {
                throw CheckpointError(
                    file: path, problem: "has an unreadable context encoding ('policy' metadata: \(error)); the file is corrupt")
            }
            checkpoint.environment = entry.environment
            if let mean = entry.stateMean, let scale = entry.stateScale, let rewardScale = entry.rewardScale {
                let encoding = ContextEncoding(
                    stateMean: mean, stateScale: scale, rewardScale: rewardScale,
                    maxTimestep: entry.maxTimestep ?? configuration.maxEpisodeLength - 1,
                    padding: entry.padding ?? .reference(for: configuration.attention), discount: entry.discount ?? 1)
                if let problem = encoding.problem(for: configuration) {
                    throw CheckpointError(file: path, problem: "has a context encoding that does not fit its model: \(problem)")
                }
                checkpoint.encoding = encoding
            }
        }
        var checksum = FNV1a64()
        checkpoint.parameters.withUnsafeBufferPointer { weights in
            for entry in layout.entries {
                checksum.add(
                    UnsafeRawBufferPointer(
                        rebasing: UnsafeRawBufferPointer(weights)[
                            (entry.offset * 4)..<((entry.offset + entry.count) * 4)]))
            }
        }
        if let optimizerJSON = metadata["optimizer"] {
            let header: OptimizerHeader
            do {
                header = try JSONDecoder().decode(OptimizerHeader.self, from: Data(optimizerJSON.utf8))
            } catch {
                throw CheckpointError(file: path, problem: "has an unreadable optimizer header; the file is corrupt")
            }
            let settings = header.settings
            guard header.step >= 0, (0..<1).contains(settings.beta1), (0..<1).contains(settings.beta2),
                settings.epsilon.isFinite, settings.epsilon > 0, settings.weightDecay.isFinite, settings.weightDecay >= 0
            else {
                throw CheckpointError(
                    file: path, problem: "has optimizer settings out of range (\(optimizerJSON)); the file is corrupt")
            }
            var optimizer = AdamW(layout: layout, settings: header.settings)
            optimizer.step = header.step
            optimizer.firstMoment = try gather("optimizer.exp_avg/")
            optimizer.secondMoment = try gather("optimizer.exp_avg_sq/")
            for entry in layout.entries {
                optimizer.firstMoment[entry.range].withUnsafeBytes { checksum.add($0) }
                optimizer.secondMoment[entry.range].withUnsafeBytes { checksum.add($0) }
            }
            checkpoint.optimizer = optimizer
        }
        if !current {
            guard metadata["checksum"] == checksum.hex else {
                throw CheckpointError(
                    file: path,
                    problem:
                        "fails its checksum (stored \(metadata["checksum"] ?? "none"), computed \(checksum.hex)); the file is corrupt: use an earlier checkpoint"
                )
            }
            checkpoint.notes.append(
                "\(path) was written by DecisionFlow 0.1: its checksum covers the weights but not the header (configuration, context encoding, training state); writing it again (train --resume, or Checkpoint.write) protects those too"
            )
        }
        checkpoint.checksum = metadata["checksum"]
        for key in reservedKeys { metadata.removeValue(forKey: key) }
        checkpoint.metadata = metadata
        return checkpoint
    }

    private init(configuration: ModelConfiguration, parameters: [Float], optimizer: AdamW?, metadata: [String: String])
    {
        self.configuration = configuration
        self.parameters = parameters
        self.optimizer = optimizer
        self.metadata = metadata
    }

    /// The saved context encoding.
    ///
    /// - Throws: `CheckpointError` naming `source` when the checkpoint holds none.
    public func contextEncoding(source: String) throws -> ContextEncoding {
        guard let encoding else {
            throw CheckpointError(
                file: source,
                problem:
                    "holds no context encoding (state normalization, 'policy' metadata); use a checkpoint written by `d4rl-run train` or `d4rl-run import`"
            )
        }
        return encoding
    }
}

/// The `policy` metadata entry: the encoding's fields and the environment in one flat JSON
/// object. Every field is optional on reading, for files from before the encoding existed.
private struct PolicyEntry: Codable {
    var stateMean: [Float]?
    var stateScale: [Float]?
    var rewardScale: Float?
    var maxTimestep: Int?
    var padding: ContextEncoding.Padding?
    /// Written only when not 1: undiscounted checkpoints keep their bytes.
    var discount: Double?
    var environment: String?

    init(encoding: ContextEncoding?, environment: String?) {
        stateMean = encoding?.stateMean
        stateScale = encoding?.stateScale
        rewardScale = encoding?.rewardScale
        maxTimestep = encoding?.maxTimestep
        padding = encoding?.padding
        discount = encoding.flatMap { $0.discount == 1 ? nil : $0.discount }
        self.environment = environment
    }
}

/// AdamW's scalars, saved in the checkpoint header.
private struct OptimizerHeader: Codable {
    var settings: AdamW.Settings
    var step: Int

    init(_ optimizer: AdamW) {
        settings = optimizer.settings
        step = optimizer.step
    }
}

extension ModelWeights {
    /// A checkpoint's weights.
    public convenience init(checkpoint: Checkpoint) {
        self.init(configuration: checkpoint.configuration, values: checkpoint.parameters)
    }
}

extension DecisionTransformer {
    /// A model with a checkpoint's configuration and weights.
    public convenience init(checkpoint: Checkpoint, batchCapacity: Int, threads: Int = 2) {
        self.init(weights: ModelWeights(checkpoint: checkpoint), batchCapacity: batchCapacity, seed: 0, threads: threads)
    }

    /// A model with `checkpoint`'s configuration and weights for `batchCapacity` sequences,
    /// after checking that this machine has the memory for it.
    ///
    /// - Throws: `CheckpointError` naming `source` when the model would not fit in memory.
    public convenience init(checkpoint: Checkpoint, batchCapacity: Int, threads: Int = 2, source: String) throws {
        if let problem = checkpoint.configuration.memoryProblem(batchCapacity: batchCapacity, threads: threads) {
            throw CheckpointError(file: source, problem: "cannot be run here: \(problem)")
        }
        self.init(checkpoint: checkpoint, batchCapacity: batchCapacity, threads: threads)
    }

    /// Replaces the weights with a checkpoint's.
    ///
    /// - Throws: `CheckpointError` when the checkpoint's configuration differs from this
    ///   model's, naming both.
    public func load(_ checkpoint: Checkpoint, source: String) throws {
        guard checkpoint.configuration == configuration else {
            throw CheckpointError(
                file: source,
                problem:
                    "was saved for a different model (\(checkpoint.configuration.summary)) than this one (\(configuration.summary)); build the model from the checkpoint's configuration"
            )
        }
        withMutableParameters { weights in for index in 0..<layout.count { weights[index] = checkpoint.parameters[index] } }
    }
}

extension DecisionPolicy {
    /// A policy from a checkpoint written by `d4rl-run train` or `d4rl-run import`.
    ///
    /// - Throws: `CheckpointError` when the file is unreadable, corrupt, or has no saved
    ///   context encoding.
    ///
    /// - Parameters:
    ///   - checkpointPath: the checkpoint file.
    ///   - agents: how many agents act through the policy.
    ///   - threads: worker threads for each step's passes.
    public convenience init(checkpointPath: String, agents: Int = 1, threads: Int = 1) throws {
        let checkpoint = try Checkpoint.read(checkpointPath)
        try self.init(checkpoint: checkpoint, source: checkpointPath, agents: agents, threads: threads)
    }

    /// A policy acting with `checkpoint`'s weights and encoding for `agents` agents, after
    /// checking that this machine has the memory for it.
    ///
    /// - Throws: `CheckpointError` naming `source` when the checkpoint holds no usable model or
    ///   context encoding, `agents` is below 1, `threads` is outside 1...1024, or the policy
    ///   would not fit in memory.
    public convenience init(checkpoint: Checkpoint, source: String, agents: Int = 1, threads: Int = 1) throws {
        let configuration = checkpoint.configuration
        if let problem = configuration.problems.first {
            throw CheckpointError(file: source, problem: "holds a model that cannot be built: \(problem)")
        }
        let encoding = try checkpoint.contextEncoding(source: source)
        if let problem = encoding.problem(for: configuration) {
            throw CheckpointError(file: source, problem: "its context encoding does not fit its model: \(problem)")
        }
        let expected = ParameterLayout(configuration: configuration).count
        guard checkpoint.parameters.count == expected else {
            throw CheckpointError(
                file: source, problem: "holds \(checkpoint.parameters.count) weights; its model has \(expected)")
        }
        guard agents >= 1 else {
            throw CheckpointError(file: source, problem: "cannot act for \(agents) agents; a policy acts for at least one")
        }
        guard (1...1024).contains(threads) else {
            throw CheckpointError(file: source, problem: "cannot be run on \(threads) threads; use 1 to 1024")
        }
        if let problem = configuration.actingMemoryProblem(agents: agents, threads: threads) {
            throw CheckpointError(file: source, problem: "cannot be run here: \(problem)")
        }
        self.init(weights: ModelWeights(checkpoint: checkpoint), encoding: encoding, agents: agents, threads: threads)
    }
}

extension FNV1a64 {
    /// Adds metadata entries, sorted by key, each as key NUL value NUL; `checksum` itself is
    /// left out.
    mutating func add(metadata: [String: String]) {
        for key in metadata.keys.sorted() where key != "checksum" {
            for text in [key, metadata[key]!] {
                var bytes = Array(text.utf8)
                bytes.append(0)
                bytes.withUnsafeBytes { add($0) }
            }
        }
    }
}

/// Why a checkpoint or state dict could not be read or loaded into a model; the message names
/// the file and says what to do.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    /// The file (or source) concerned.
    public var file: String
    /// What is wrong, and what to do.
    public var problem: String

    public var description: String { "\(file): \(problem)" }

    /// Creates an error; see the properties for the meaning of each value.
    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
    }
}
