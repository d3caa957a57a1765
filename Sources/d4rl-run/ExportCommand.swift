import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import Foundation

/// `d4rl-run export`: a checkpoint into what the reference PyTorch model loads.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint as a PyTorch state dict and the JSON that describes it.",
        discussion: """
            Writes DIR/model.safetensors, a pure state dict under the reference's names (no \
            optimizer tensors; for softmax attention GPT-2's attn.bias and attn.masked_bias \
            buffers are recreated), which the reference model loads with \
            load_state_dict(strict=True), and DIR/description.json, the model's configuration \
            and state normalization in the reference's terms: the file `import` reads. Export \
            then import reproduces the weights bit for bit. Both files are written in full \
            before either replaces anything; a folder that holds the checkpoint or another \
            export is refused unless --force is given, and the checkpoint itself never is \
            replaced.
            """
    )

    @Argument(help: "The checkpoint to export.", completion: .file(extensions: ["safetensors"]))
    var checkpoint: String

    @Option(name: .shortAndLong, help: "The folder to write model.safetensors and description.json into.")
    var output: String

    func validate() throws { try requirePath("output", output) }

    @Flag(help: "Replace an earlier export in the folder, or write beside the checkpoint (never over it).")
    var force = false

    func run() throws {
        let saved = try Checkpoint.read(checkpoint)
        for loss in saved.exportLosses {
            standardError("warning: the description has no field for \(loss); import will use the reference default\n")
        }
        let paths = try saved.export(to: output, source: checkpoint, force: force)
        print("wrote \(paths.stateDictionary) and \(paths.description): \(saved.configuration.summary)")
    }
}
