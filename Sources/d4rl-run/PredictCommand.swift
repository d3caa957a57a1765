import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowSupport
import Foundation

/// `d4rl-run predict`: the model's action predictions for given windows, to compare with
/// another runtime's (scripts/check-interop.py compares onnxruntime's with these).
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Write a checkpoint's action predictions for windows read from a safetensors file.",
        discussion: """
            Reads states (B, T, S), actions (B, T, A), returns_to_go (B, T, 1), timesteps \
            (B, T) int64 and attention_mask (B, T), in the model's units (states normalized, \
            returns-to-go scaled, as a policy's window is encoded; names may carry an input/ \
            prefix, as the shared fixtures' do), runs the full-window forward pass, and writes \
            action_preds (B, T, A) to the output file. T may be at most the model's K.
            """
    )

    @Option(help: "The checkpoint.", completion: .file(extensions: ["safetensors"]))
    var checkpoint: String

    @Option(help: "The windows, as safetensors.", completion: .file(extensions: ["safetensors"]))
    var inputs: String

    @Option(name: .shortAndLong, help: "The file to write action_preds to.")
    var output: String

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Replace an existing output file (never an input, never through a symbolic link).")
    var force = false

    func validate() throws { try requirePath("output", output) }

    func run() throws {
        try refuseReplacing(output, inputs: [checkpoint, inputs], force: force, choice: "-o")
        let saved = try Checkpoint.read(checkpoint)
        let c = saved.configuration
        let tensors: [String: SafetensorsTensor]
        do {
            tensors = try Safetensors.read(inputs).tensors
        } catch let error as SafetensorsError {
            throw CheckpointError(file: inputs, problem: error.problem)
        }
        func tensor(_ name: String) throws -> SafetensorsTensor {
            if tensors[name] != nil, tensors["input/" + name] != nil {
                throw CheckpointError(file: inputs, problem: "holds both '\(name)' and 'input/\(name)'; keep one")
            }
            guard let found = tensors[name] ?? tensors["input/" + name] else {
                throw CheckpointError(file: inputs, problem: "has no tensor '\(name)' (or 'input/\(name)')")
            }
            return found
        }
        let states = try tensor("states")
        guard states.shape.count == 3, states.shape[0] >= 1, (1...c.contextLength).contains(states.shape[1]),
            states.shape[2] == c.stateDimension
        else {
            throw CheckpointError(
                file: inputs,
                problem:
                    "states has shape \(states.shape); the model takes (B, T, \(c.stateDimension)) with at least one window (B ≥ 1) and 1 ≤ T ≤ \(c.contextLength)")
        }
        let (B, T) = (states.shape[0], states.shape[1])
        let expected: [(String, [Int])] = [
            ("actions", [B, T, c.actionDimension]), ("returns_to_go", [B, T, 1]), ("timesteps", [B, T]),
            ("attention_mask", [B, T]),
        ]
        for (name, shape) in expected where try tensor(name).shape != shape {
            throw CheckpointError(file: inputs, problem: "\(name) has shape \(try tensor(name).shape); expected \(shape)")
        }
        guard let timesteps = try tensor("timesteps").integers else {
            throw CheckpointError(file: inputs, problem: "timesteps must be integers (I64)")
        }
        if let bad = timesteps.first(where: { !(0..<c.maxEpisodeLength).contains($0) }) {
            throw CheckpointError(
                file: inputs, problem: "timestep \(bad) is outside the model's table (0..<\(c.maxEpisodeLength))")
        }
        let batch = TrajectoryBatch(
            capacity: B, timesteps: T, stateDimension: c.stateDimension, actionDimension: c.actionDimension)
        batch.states = states.values
        batch.actions = try tensor("actions").values
        batch.returnsToGo = try tensor("returns_to_go").values
        batch.mask = try tensor("attention_mask").values
        batch.timestepIndices = timesteps.map { Int32($0) }
        if let bad = batch.mask.firstIndex(where: { $0 != 0 && $0 != 1 }) {
            throw CheckpointError(
                file: inputs, problem: "attention_mask holds \(batch.mask[bad]) at index \(bad); it takes 1 for a real step and 0 for padding")
        }
        for (name, values) in [("states", batch.states), ("actions", batch.actions), ("returns_to_go", batch.returnsToGo)] {
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw CheckpointError(file: inputs, problem: "\(name) holds \(values[bad]) at index \(bad)")
            }
        }
        if let problem = c.memoryProblem(batchCapacity: B, threads: threadOptions.count()) {
            throw CheckpointError(file: inputs, problem: "holds \(B) windows, too many for this machine: \(problem)")
        }
        let model = DecisionTransformer(configuration: c, batchCapacity: B, seed: 0, threads: threadOptions.count())
        try model.load(saved, source: checkpoint)
        _ = model.forward(batch, training: false)
        let predictions = (0..<B).flatMap { model.actionPredictions(sequence: $0) }
        let data = try predictions.withUnsafeBufferPointer {
            try Safetensors.serialize([(name: "action_preds", shape: [B, T, c.actionDimension], values: $0)], metadata: [:])
        }
        try AtomicFile.write(data, to: output)
        print("wrote \(output): action_preds (\(B), \(T), \(c.actionDimension))")
    }
}
