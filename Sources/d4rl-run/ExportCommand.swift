import ArgumentParser
import DecisionFlow
import DecisionFlowCheckpoints
import Foundation

/// `d4rl-run export`: a checkpoint into what the reference PyTorch model loads.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint as a PyTorch state dict and its description, or as an ONNX model.",
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

            With --onnx FILE, writes the policy's full-window forward pass as an ONNX model \
            (opset 17) instead: inputs states (B, K, S), actions (B, K, A), returns_to_go \
            (B, K, 1), timesteps (B, K) int64 and attention_mask (B, K), with a dynamic batch; \
            output action_preds (B, K, A). An existing FILE is replaced only with --force, the \
            checkpoint never, and a symbolic link is refused.
            """
    )

    @Argument(help: "The checkpoint to export.", completion: .file(extensions: ["safetensors"]))
    var checkpoint: String

    @Option(name: .shortAndLong, help: "The folder to write model.safetensors and description.json into.")
    var output: String?

    @Option(help: "Write an ONNX model to this file instead.", completion: .file(extensions: ["onnx"]))
    var onnx: String?

    func validate() throws {
        switch (output, onnx) {
        case (nil, nil): throw ValidationError("give where to write: -o DIR (PyTorch state dict) or --onnx FILE")
        case (.some, .some): throw ValidationError("-o and --onnx name two exports; give one")
        case (let output?, nil): try requirePath("output", output)
        case (nil, let onnx?): try requirePath("onnx", onnx)
        }
    }

    @Flag(help: "Replace an earlier export in the folder, or write beside the checkpoint (never over it).")
    var force = false

    func run() throws {
        let saved = try Checkpoint.read(checkpoint)
        if let onnx {
            try saved.exportONNX(to: onnx, source: checkpoint, force: force)
            print("wrote \(onnx): ONNX opset \(ONNXExport.opset), \(saved.configuration.summary)")
            return
        }
        guard let output else { return }
        for loss in saved.exportLosses {
            standardError("warning: the description has no field for \(loss); import will use the reference default\n")
        }
        let paths = try saved.export(to: output, source: checkpoint, force: force)
        print("wrote \(paths.stateDictionary) and \(paths.description): \(saved.configuration.summary)")
    }
}
