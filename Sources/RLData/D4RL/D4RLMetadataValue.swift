/// A scalar from a file's `metadata/` group: a string, an integer or a real number.
public enum D4RLMetadataValue: Sendable, Equatable, Codable, CustomStringConvertible {
    /// A text value.
    case string(String)
    /// A whole number.
    case integer(Int64)
    /// A floating-point number.
    case real(Double)

    /// Decodes a JSON string or number.
    public init(from decoder: any Decoder) throws {
        // JSON does not say which kind a value is, so try the narrowest first.
        let container = try decoder.singleValueContainer()
        do {
            self = .integer(try container.decode(Int64.self))
        } catch {
            do {
                self = .real(try container.decode(Double.self))
            } catch {
                self = .string(try container.decode(String.self))
            }
        }
    }

    /// Encodes as a plain JSON string or number.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .real(let value): try container.encode(value)
        }
    }

    public var description: String {
        switch self {
        case .string(let value): return value
        case .integer(let value): return String(value)
        case .real(let value): return String(value)
        }
    }

    /// The value as a number, if it is one.
    public var number: Double? {
        switch self {
        case .string: return nil
        case .integer(let value): return Double(value)
        case .real(let value): return value
        }
    }

    /// Reads every scalar dataset below `metadata/`, keyed by its path below `metadata/`
    /// (e.g. `behavior/env_id`). Arrays there (D4RL stores policy weights under
    /// `metadata/policy/`) are left out: they are not metadata a loader needs.
    ///
    /// Metadata is informational, so an entry that cannot be read is skipped, never fatal:
    /// the loader's own checks decide whether the data itself is usable.
    static func readAll(from file: HDF5File) -> [String: D4RLMetadataValue] {
        guard file.kind(of: "metadata") == .group else { return [:] }
        var result: [String: D4RLMetadataValue] = [:]
        do {
            for entry in try file.entries(under: "metadata") where entry.kind == .dataset {
                let key = String(entry.path.dropFirst("metadata/".count))
                if let value = try scalar(at: entry.path, in: file) { result[key] = value }
            }
        } catch {
            return result
        }
        return result
    }

    private static func scalar(at path: String, in file: HDF5File) throws -> D4RLMetadataValue? {
        let dataset = try file.dataset(path)
        guard dataset.elementCount == 1 else { return nil }
        switch dataset.elementType {
        case .string: return .string(try dataset.readString())
        case .float: return .real(try dataset.readScalar(as: Double.self))
        case .integer, .boolean, .enumeration: return .integer(try dataset.readScalar(as: Int64.self))
        case .unsupported: return nil
        }
    }
}
