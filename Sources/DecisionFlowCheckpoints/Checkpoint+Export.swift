import DecisionFlow
import DecisionFlowSupport
import Foundation

extension Checkpoint {
    /// GPT-2's context size in the reference softmax Decision Transformer (`n_positions`),
    /// which sizes its causal-mask buffers.
    public static let referencePositionCount = 1024

    /// The weights as a pure PyTorch state dict, serialized as safetensors: the reference's
    /// names and shapes, float32, no optimizer tensors and no DecisionFlow metadata beyond
    /// `format: pt`. For softmax attention GPT-2's registered buffers are recreated
    /// (`transformer.h.N.attn.bias`, the U8 lower-triangular mask of
    /// max(1024, 3K) positions, and `attn.masked_bias`, -1e4), so that the reference model's
    /// `load_state_dict(strict=True)` accepts the file.
    public func exportedStateDictionary() throws -> Data {
        let layout = ParameterLayout(configuration: configuration)
        var tensors: [(name: String, dtype: SafetensorsTensor.DType, shape: [Int], bytes: [UInt8])] = []
        for entry in layout.entries {
            let bytes = parameters[entry.range].withUnsafeBytes { Array($0) }
            tensors.append((entry.name, .float32, entry.shape, bytes))
        }
        if configuration.attention == .softmax {
            let n = Swift.max(Self.referencePositionCount, configuration.tokenCount)
            var mask = [UInt8](repeating: 0, count: n * n)
            for row in 0..<n {
                for column in 0...row { mask[row * n + column] = 1 }
            }
            let maskedBias = withUnsafeBytes(of: Float(-1e4).bitPattern.littleEndian) { Array($0) }
            for block in 0..<configuration.layerCount {
                tensors.append(("transformer.h.\(block).attn.bias", .uint8, [1, 1, n, n], mask))
                tensors.append(("transformer.h.\(block).attn.masked_bias", .float32, [], maskedBias))
            }
        }
        tensors.sort { $0.name < $1.name }
        return try Safetensors.serialize(raw: tensors, metadata: ["format": "pt"])
    }

    /// What `import` would rebuild differently from this checkpoint's configuration: fields
    /// the reference's description has no key for. Empty for every model DecisionFlow trains
    /// with its defaults.
    public var exportLosses: [String] {
        let reference = ModelConfiguration(stateDimension: 1, actionDimension: 1)
        var losses: [String] = []
        if configuration.actionTanh != reference.actionTanh { losses.append("actionTanh \(configuration.actionTanh)") }
        if configuration.layerNormEpsilon != reference.layerNormEpsilon {
            losses.append("layerNormEpsilon \(configuration.layerNormEpsilon)")
        }
        if configuration.flowEpsilon != reference.flowEpsilon { losses.append("flowEpsilon \(configuration.flowEpsilon)") }
        if let discount = encoding?.discount, discount != 1 { losses.append("discount \(discount)") }
        return losses
    }

    /// Writes `model.safetensors` (`exportedStateDictionary()`) and `description.json` (the
    /// `ImportedModelDescription` that `import` reads) into `directory`, creating it if needed.
    ///
    /// Nothing is lost: both files are prepared in full, then written beside their final names
    /// and renamed only once both are complete (`AtomicFile`). The source checkpoint is never
    /// replaced. Without `force`, a folder that holds the source or another export is refused.
    ///
    /// - Parameters:
    ///   - directory: the folder to write into.
    ///   - source: the checkpoint's file: named in errors, and never replaced.
    ///   - force: replace an earlier export in `directory`, or write beside the source.
    /// - Returns: the two paths written.
    /// - Throws: `RefusedOverwrite` for a folder refused without `force`; `FileWriteError`
    ///   when a file cannot be written; `CheckpointError` when the checkpoint has no encoding.
    @discardableResult
    public func export(to directory: String, source: String, force: Bool = false) throws -> (
        stateDictionary: String, description: String
    ) {
        let description = try ImportedModelDescription(checkpoint: self, file: source)
        let files = [
            (data: try exportedStateDictionary(), path: FilePath.join(directory, "model.safetensors")),
            (data: try JSONEncoder.prettySorted.encode(description),
             path: FilePath.join(directory, "description.json")),
        ]
        for file in files where isSameFile(file.path, source) {
            throw RefusedOverwrite(
                file: file.path, problem: "is the checkpoint being exported; export into another folder (-o)")
        }
        // An export's files belong to its folder: writing through a link would replace a file
        // elsewhere (another run's config.json), even with --force.
        for file in files {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: file.path) {
                throw RefusedOverwrite(
                    file: file.path,
                    problem: "is a symbolic link (to \(target)); an export writes its own files, so remove the link or export into another folder")
            }
        }
        if !force {
            if isSameFile(directory, FilePath.folder(of: source)) {
                throw RefusedOverwrite(
                    file: directory,
                    problem: "holds the checkpoint being exported (\(source)); export into a folder of its own, or pass --force to write beside it")
            }
            let earlier = files.map(\.path).filter { FileManager.default.fileExists(atPath: $0) }
            if !earlier.isEmpty {
                throw RefusedOverwrite(
                    file: directory,
                    problem: "already holds an export (\(earlier.map { FilePath.name(of: $0) }.joined(separator: ", "))); choose another folder, or pass --force to replace it")
            }
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(file: directory, problem: FileProblem.describe(error, writing: directory))
        }
        try AtomicFile.write(files)
        return (files[0].path, files[1].path)
    }
}
