import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import Foundation
import RLData
import RLEnvironments

/// `d4rl-run import`: a reference PyTorch state dict into a DecisionFlow checkpoint.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a PyTorch Decision Transformer or Decision-Flowformer state dict into a checkpoint.",
        discussion: """
            Train on a GPU with the reference code, save the state dict as safetensors \
            (`safetensors.torch.save_file(model.state_dict(), "model.safetensors")`), describe \
            the model in a small JSON file, and import it; the checkpoint then runs with \
            `d4rl-run evaluate` and DecisionPolicy. The JSON holds state_dim, act_dim, \
            hidden_size, n_layer, n_head, max_length (K), max_ep_len, state_mean and state_std \
            (the reference's divisor, std + 1e-6), and optionally n_inner, activation_function \
            (relu or gelu_new), attention (flow or softmax), scale (the return scale, 1000) \
            and env. Every tensor must be present with the reference's name and shape.
            """
    )

    @Option(help: "The state dict, as safetensors.", completion: .file(extensions: ["safetensors"]))
    var stateDict: String

    @Option(
        help: "The JSON description of the model and its state normalization.", completion: .file(extensions: ["json"]))
    var description: String

    @Option(name: .shortAndLong, help: "The checkpoint to write.")
    var output: String

    func validate() throws { try requirePath("output", output) }

    @Option(help: "A prefix to strip from every tensor name (e.g. 'model.').")
    var prefix = ""

    func run() throws {
        let checkpoint = try Checkpoint.importing(stateDictionary: stateDict, description: description, prefix: prefix)
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
        print("wrote \(output): \(checkpoint.configuration.summary)")
    }
}
