import DecisionFlow
import DecisionFlowSupport
import DecisionFlowTraining
import Foundation
import TestSupport
import Testing
import TrainingTestSupport

/// The field table is the one place a configuration field is described: presets, flags,
/// `--help` (checked in CLITests) and configs/README.md all come from it.
@Suite struct ConfigurationFieldTests {
    /// Every stored property of the configuration's groups has exactly one entry, group by
    /// group in the groups' order; of the model's hyperparameters, all but the three a
    /// training run keeps at the reference's values.
    @Test func everyPropertyHasOneEntry() {
        let configuration = TrainingConfiguration()
        func labels(_ group: Any) -> [String] { Mirror(reflecting: group).children.compactMap(\.label) }
        let fixed: Set<String> = ["actionTanh", "layerNormEpsilon", "flowEpsilon"]
        let groups = [
            labels(configuration.data), labels(configuration.model).filter { !fixed.contains($0) },
            labels(configuration.optimization), labels(configuration.bookkeeping), labels(configuration.evaluation),
        ]
        #expect(labels(configuration) == ["data", "model", "optimization", "bookkeeping", "evaluation"])
        var names = TrainingConfiguration.fields.map(\.name)[...]
        for group in groups {
            #expect(Set(names.prefix(group.count)) == Set(group), "the fields of \(group)")
            names = names.dropFirst(group.count)
        }
        #expect(names.isEmpty, "fields of no group: \(names)")
        #expect(Set(TrainingConfiguration.fields.map(\.flag)).count == TrainingConfiguration.fields.count, "flags are distinct")
    }

    /// The documented defaults are the default configuration's values: read back from its
    /// JSON (an independent rendering), each equals the table's text.
    @Test func theDocumentedDefaultsAreTheDefaultInstances() throws {
        let json = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainingConfiguration())) as? [String: Any])
        for field in TrainingConfiguration.fields {
            // Unset by default (absent, or an empty list): described in words.
            guard let value = json[field.name], (value as? [Any])?.isEmpty != true else { continue }
            let shown = field.defaultText.replacingOccurrences(of: "`", with: "")
            if let number = value as? NSNumber, !(value is String) {
                let documented = try #require(Double(shown), "\(field.name): '\(field.defaultText)' is not a number")
                expectClose(documented, number.doubleValue, atol: 0, rtol: 1e-6, "\(field.name)'s default")
            } else {
                #expect(shown == "\(value)", "\(field.name): documented \(field.defaultText), default \(value)")
            }
        }
    }

    /// Setting every field through its flag text, then writing and reading the JSON, gives
    /// back the same configuration, under exactly the table's keys.
    @Test func everyFieldGoesThroughItsFlagAndItsJSONKey() throws {
        var configuration = TrainingConfiguration()
        let samples: [String: [String]] = [
            "datasets": ["a.hdf5", "b.hdf5"], "environment": ["walker2d"], "sampling": ["length-weighted"],
            "attention": ["softmax"], "activation": ["gelu"], "seed": ["18446744073709551615"],
        ]
        for field in TrainingConfiguration.fields {
            let before = configuration
            try configuration.set(field, values: samples[field.name] ?? ["7"])
            #expect(configuration != before, "--\(field.flag) changed nothing")
        }
        #expect(configuration.seed == .max && configuration.learningRate == 7 && configuration.datasets.count == 2)
        let data = try JSONEncoder.sorted.encode(configuration)
        let keys = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]).keys
        #expect(Set(keys) == Set(TrainingConfiguration.fields.map(\.name)))
        #expect(try TrainingConfiguration.decode(data, source: "round trip") == configuration)
    }

    /// A configuration file's mistakes are named in the field table's words, never in
    /// Swift's ("Array<Any>", "Cannot initialize Activation"), and a field given twice (which
    /// Foundation and Python read differently) is refused.
    @Test func fileMistakesAreNamedInPlainWords() throws {
        for (text, expected) in [
            (#"{"activation": "tanh"}"#, "field 'activation' should be one of relu, gelu (it is the text \"tanh\")"),
            (#"{"datasets": "d.hdf5"}"#, "field 'datasets' should be one or more files (it is the text \"d.hdf5\")"),
            (#"{"steps": 5, "steps": 7}"#, "gives the field 'steps' twice"),
            (#"{"steps": true}"#, "field 'steps' should be a whole number"),
            // Text that looks like a number is shown as text, not as the number it spells.
            (#"{"steps": "5"}"#, "field 'steps' should be a whole number (it is the text \"5\")"),
            (#"{"steps": 1e20}"#, "field 'steps' should be a whole number (it is 1e+20)"),
        ] {
            let error = #expect(throws: TrainingError.self) { try TrainingConfiguration.decode(Data(text.utf8), source: "c.json") }
            #expect(error?.description.contains(expected) == true, "\(text): \(error?.description ?? "decoded")")
            #expect(error?.description.contains("Array<") == false && error?.description.contains("Cannot initialize") == false)
        }
    }

    @Test func flagValuesAreChecked() throws {
        var configuration = TrainingConfiguration()
        let batch = try #require(TrainingConfiguration.field(named: "batchSize"))
        #expect(throws: TrainingError.self) { try configuration.set(batch, values: ["many"]) }
        #expect(throws: TrainingError.self) { try configuration.set(batch, values: ["1", "2"]) }
        let attention = try #require(TrainingConfiguration.field(flag: "attention"))
        do {
            try configuration.set(attention, values: ["linear"])
            Issue.record("'linear' was taken as an attention")
        } catch {
            #expect("\(error)".contains("--attention") && "\(error)".contains("flow, softmax"))
        }
    }

    /// A null is an error, not the default, for a field that has no "unset".
    @Test func nullIsRefusedWhereAFieldCannotBeUnset() throws {
        #expect(throws: TrainingError.self) {
            try TrainingConfiguration.decode(Data(#"{"steps": null}"#.utf8), source: "null.json")
        }
        let unset = try TrainingConfiguration.decode(Data(#"{"mlpDimension": null}"#.utf8), source: "null.json")
        #expect(unset.mlpDimension == nil)
    }

    /// configs/README.md carries the table generated from the fields, verbatim.
    @Test func theREADMETableIsGeneratedFromTheFields() throws {
        let readme = try String(
            contentsOf: TrainingConfiguration.packageRootForTests.appendingPathComponent("configs/README.md"),
            encoding: .utf8)
        let table = TrainingConfiguration.fieldTableMarkdown
        #expect(
            readme.contains(table),
            "configs/README.md's field table is out of date; replace it with:\n\(table)")
    }
}

extension TrainingConfiguration {
    static var packageRootForTests: URL { TrainingFixtures.packageRoot }
}
