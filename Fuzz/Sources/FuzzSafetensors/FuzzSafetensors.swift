// Feeds arbitrary bytes to the safetensors reader and the checkpoint decoder. Any input must
// end in a value or a typed error: a trap, a sanitizer report or a timeout is a bug.
import DecisionFlowCheckpoints
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    do {
        let contents = try Safetensors.parse(data, file: "fuzz.safetensors")
        // What was accepted must be internally consistent.
        for (name, tensor) in contents.tensors {
            let elements = tensor.shape.reduce(1, *)
            if elements != tensor.values.count { fatalError("tensor \(name) has \(tensor.values.count) values for shape \(tensor.shape)") }
        }
    } catch is SafetensorsError {
    } catch {
        fatalError("untyped error from Safetensors.parse: \(error)")
    }
    do {
        let checkpoint = try Checkpoint.parse(data, source: "fuzz.safetensors")
        if !checkpoint.configuration.problems.isEmpty { fatalError("an invalid configuration was accepted") }
        if let encoding = checkpoint.encoding, encoding.problem(for: checkpoint.configuration) != nil {
            fatalError("an encoding that does not fit was accepted")
        }
    } catch is CheckpointError {
    } catch {
        fatalError("untyped error from Checkpoint.parse: \(error)")
    }
    return 0
}
