import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowSupport
import Foundation
import RLData
import RLEnvironments

/// `d4rl-run import`: a reference PyTorch state dict into a DecisionFlow checkpoint.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a PyTorch or Hugging Face Decision Transformer (or Decision-Flowformer) into a checkpoint.",
        discussion: """
            Train on a GPU with the reference code, save the state dict as safetensors \
            (`safetensors.torch.save_file(model.state_dict(), "model.safetensors")`), describe \
            the model in a small JSON file, and import it; the checkpoint then runs with \
            `d4rl-run evaluate` and DecisionPolicy. The JSON holds state_dim, act_dim, \
            hidden_size, n_layer, n_head, max_length (K), max_ep_len, state_mean and state_std \
            (the reference's divisor, std + 1e-6), and optionally n_inner, activation_function \
            (relu or gelu_new), attention (flow or softmax), scale (the return scale, 1000) \
            and env. Every tensor must be present with the reference's name and shape.

            With --huggingface DIR, the model is a Hugging Face transformers \
            DecisionTransformerModel in the Hub's layout: DIR/config.json (state_dim, act_dim, \
            hidden_size, n_layer, n_head, n_inner, activation_function, max_ep_len, \
            action_tanh, layer_norm_epsilon) and DIR/model.safetensors under transformers' \
            names. The description then needs only max_length (K), state_mean, state_std and \
            optionally scale and env; shape fields it holds must agree with config.json. \
            transformers adds row 0 of encoder.wpe to every token after embed_ln: that row is \
            folded into embed_ln's bias (the checkpoint's import_notes say so); encoder.wte is \
            unused, as the reference's transformer.wte is.
            """
    )

    @Option(help: "The state dict, as safetensors (reference names).", completion: .file(extensions: ["safetensors"]))
    var stateDict: String?

    @Option(
        name: .customLong("huggingface"),
        help: "A Hugging Face DecisionTransformerModel folder: config.json and model.safetensors.",
        completion: .directory)
    var huggingFace: String?

    @Option(
        help: "The JSON description of the model and its state normalization.", completion: .file(extensions: ["json"]))
    var description: String

    @Option(name: .shortAndLong, help: "The checkpoint to write.")
    var output: String

    @Option(help: "A prefix to strip from every tensor name of --state-dict (e.g. 'model.').")
    var prefix = ""

    @Flag(help: "Replace an existing output file (never an input, never through a symbolic link).")
    var force = false

    func validate() throws {
        try requirePath("output", output)
        switch (stateDict, huggingFace) {
        case (nil, nil): throw ValidationError("give the model: --state-dict FILE (reference names) or --huggingface DIR")
        case (.some, .some): throw ValidationError("--state-dict and --huggingface name two models; give one")
        default: break
        }
        if huggingFace != nil, !prefix.isEmpty {
            throw ValidationError("--prefix applies to --state-dict only; transformers' names are read as they are")
        }
    }

    func run() throws {
        var inputs = [description] + (stateDict.map { [$0] } ?? [])
        if let huggingFace {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: huggingFace, isDirectory: &isFolder), isFolder.boolValue else {
                throw ValidationError(
                    "--huggingface \(huggingFace) is not a folder; give the folder that holds config.json and model.safetensors")
            }
            inputs += ["config.json", "model.safetensors"].map { FilePath.join(huggingFace, $0) }
        }
        try refuseReplacing(output, inputs: inputs, force: force, choice: "-o")
        let checkpoint =
            try huggingFace.map { try Checkpoint.importing(huggingFace: $0, description: description) }
            ?? Checkpoint.importing(stateDictionary: stateDict ?? "", description: description, prefix: prefix)
        if let env = checkpoint.environment {
            // The description's `env` must name an environment of the catalog, of the model's widths.
            do {
                try EnvironmentCatalog.standard.entry(env).checkWidths(
                    observationWidth: checkpoint.configuration.stateDimension,
                    actionWidth: checkpoint.configuration.actionDimension, of: "the model (state_dim, act_dim)")
            } catch let error as EnvironmentError {
                throw CheckpointError(file: description, problem: "env '\(env)': \(error); correct it or leave it out")
            }
        }
        try checkpoint.write(to: output)
        if let notes = checkpoint.metadata["import_notes"] { standardError("note: \(notes)\n") }
        print("wrote \(output): \(checkpoint.configuration.summary)")
    }
}
