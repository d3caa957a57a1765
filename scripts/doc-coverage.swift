// Lists the public symbols of DecisionFlow's library modules that have no doc comment, from
// the symbol graphs `swift package dump-symbol-graph` writes; exits 1 if there are any.
// Symbols without a source location (synthesized conformances, members inherited from the
// standard library) are not ours to document and are skipped.
//
//   swift scripts/doc-coverage.swift .build/x86_64-unknown-linux-gnu/symbolgraph
import Foundation

let modules = [
    "DecisionFlowSupport", "RLData", "DecisionFlow", "DecisionFlowCheckpoints", "RLEnvironments", "ProcessGroups",
    "DecisionFlowTraining", "DecisionFlowEvaluation", "DecisionFlowExperiments", "DecisionFlowMPI",
]
guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: swift scripts/doc-coverage.swift SYMBOL_GRAPH_DIRECTORY\n".utf8))
    exit(64)
}
let directory = CommandLine.arguments[1]
let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
for module in modules where !files.contains("\(module).symbols.json") {
    FileHandle.standardError.write(Data("no symbol graph for \(module) in \(directory)\n".utf8))
    exit(65)
}
var missing: [String] = []
var counted = 0
for file in files.sorted() where file.hasSuffix(".symbols.json") {
    let module = String(file.prefix { $0 != "." && $0 != "@" })
    guard modules.contains(module) else { continue }
    guard let data = FileManager.default.contents(atPath: "\(directory)/\(file)"),
        let graph = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
        let symbols = graph["symbols"] as? [[String: Any]]
    else {
        FileHandle.standardError.write(Data("cannot read \(file)\n".utf8))
        exit(65)
    }
    for symbol in symbols {
        guard let access = symbol["accessLevel"] as? String, access == "public" || access == "open",
            let location = symbol["location"] as? [String: Any], let uri = location["uri"] as? String,
            uri.contains("/Sources/")
        else { continue }
        counted += 1
        if symbol["docComment"] == nil {
            let path = (symbol["pathComponents"] as? [String] ?? []).joined(separator: ".")
            let line = ((location["position"] as? [String: Any])?["line"] as? Int).map { $0 + 1 } ?? 0
            missing.append("\(uri.replacingOccurrences(of: "file://", with: "")):\(line): \(module).\(path) has no doc comment")
        }
    }
}
for line in missing { print(line) }
print("\(counted - missing.count) of \(counted) public symbols documented")
exit(missing.isEmpty ? 0 : 1)
