import Foundation

extension JSONEncoder {
    /// A pretty-printed encoder with sorted keys, for JSON a person may read.
    public static var prettySorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }

    /// An encoder with sorted keys, so files and metadata are reproducible.
    public static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
