import Foundation

/// `../shared` beside the clone (fixtures and datasets; CI puts it there), or the folder named
/// by `$DECISIONFLOW_SHARED`.
public enum SharedFolder {
    /// The shared folder.
    public static let url: URL = {
        if let override = ProcessInfo.processInfo.environment["DECISIONFLOW_SHARED"] {
            return URL(fileURLWithPath: override)
        }
        // Tests/Support/TestSupport/SharedFolder.swift → the clone → its parent.
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("shared")
    }()

    /// The path of `relative` under `datasets/`.
    public static func dataset(_ relative: String) -> String {
        url.appendingPathComponent("datasets").appendingPathComponent(relative).path
    }
}
