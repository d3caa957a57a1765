import DecisionFlow
import DecisionFlowTraining
import Foundation
import Testing

/// The field table is the one place a configuration field is described: presets, flags,
/// `--help` (checked in CLITests) and configs/README.md all come from it.
@Suite struct ConfigurationFieldTests {
    /// Every stored property of `TrainingConfiguration` has exactly one entry, in order.
    @Test func everyPropertyHasOneEntry() {
        let properties = Mirror(reflecting: TrainingConfiguration()).children.compactMap(\.label)
        #expect(TrainingConfiguration.fields.map(\.name) == properties)
        #expect(Set(TrainingConfiguration.fields.map(\.flag)).count == properties.count, "flags are distinct")
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
