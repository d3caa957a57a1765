import Foundation
import TestSupport

/// Where the tests find shared data, and scratch files that clean up after themselves.
enum TestFiles {
    /// The package root, from this file's location (Tests/RLDataTests/TestFiles.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared` beside the clone (CI puts it there), or `$DECISIONFLOW_SHARED`.
    static let shared = SharedFolder.url

    static func sharedDataset(_ name: String) -> String {
        shared.appendingPathComponent("datasets/\(name).hdf5").path
    }

    /// The fifteen shared D4RL-schema files, by name.
    static let sharedDatasetNames: [String] = ["hopper", "halfcheetah", "walker2d"].flatMap { env in
        ["random", "medium", "medium-replay", "expert", "medium-expert"].map { "\(env)-\($0)" }
    }
}

