import Foundation

/// Checks JSON that Foundation will decode, for what Foundation does not check.
public enum StrictJSON {
    /// The first key any object of the document repeats, nil when none does (or when the
    /// document is not JSON, which its decoder reports). Foundation keeps a repeated key's
    /// first value and Python its last, so a document that repeats one means two things.
    public static func firstRepeatedKey(in data: Data) -> String? {
        do {
            _ = try OrderedJSON.parse(String(decoding: data, as: UTF8.self))
            return nil
        } catch let error as OrderedJSON.ParseError {
            return error.repeatedKey
        } catch {
            return nil
        }
    }
}

/// A JSON value that keeps the order of object keys.
///
/// Minari stores its spaces as JSON strings, and the order of a Dict space's keys is the
/// order gymnasium flattens them in. Foundation's parsers forget that order, so RLData parses
/// the few JSON documents a Minari dataset carries itself. The parser is strict (RFC 8259),
/// bounded in depth, and never traps: malformed input is an error that says where.
enum OrderedJSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([OrderedJSON])
    /// Members in the order the document lists them.
    case object([(key: String, value: OrderedJSON)])

    static func == (lhs: OrderedJSON, rhs: OrderedJSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b || (a.isNaN && b.isNaN)
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The member `key` of an object (a parsed document never repeats a key).
    subscript(key: String) -> OrderedJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The value as an exact non-negative integer, if it is one.
    var integerValue: Int? {
        guard case .number(let value) = self, value.isFinite, value >= 0, value <= 9.0e15,
            value == value.rounded()
        else { return nil }
        return Int(value)
    }

    /// The value as a message shows it: a number or text as written, or its kind.
    var summary: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return "\(value)"
        case .number(let value): return "\(value)"
        case .string(let text): return "the text \"\(text.prefix(40))\""
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    /// Why a document could not be parsed: a sentence that says where.
    struct ParseError: Error, CustomStringConvertible {
        var description: String
        /// The key an object repeats, when that is the problem.
        var repeatedKey: String? = nil
    }

    /// Nesting deeper than this is refused: real spaces nest two or three levels.
    static let maximumDepth = 64

    /// Parses a whole document. Python's `json.dumps` writes `Infinity`, `-Infinity` and
    /// `NaN` for non-finite floats (a Box's bounds are often infinite), so those are accepted.
    static func parse(_ text: String) throws -> OrderedJSON {
        var parser = Parser(bytes: Array(text.utf8))
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else {
            throw parser.error("unexpected text after the value")
        }
        return value
    }

    /// Writes the value as compact JSON (keys in their order; non-finite numbers as Python does).
    var serialized: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .number(let value):
            if value.isNaN { return "NaN" }
            if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return "\(value)"
        case .string(let text): return OrderedJSON.quote(text)
        case .array(let items): return "[" + items.map(\.serialized).joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.map { "\(OrderedJSON.quote($0.key)): \($0.value.serialized)" }.joined(separator: ", ")
                + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func error(_ problem: String) -> ParseError {
            ParseError(description: "\(problem) at byte \(position)")
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[position]) { position += 1 }
        }

        mutating func literal(_ word: String) -> Bool {
            let utf8 = Array(word.utf8)
            guard position + utf8.count <= bytes.count, Array(bytes[position..<(position + utf8.count)]) == utf8
            else { return false }
            position += utf8.count
            return true
        }

        mutating func value(depth: Int) throws -> OrderedJSON {
            guard depth < OrderedJSON.maximumDepth else {
                throw error("values nest more than \(OrderedJSON.maximumDepth) deep")
            }
            skipWhitespace()
            guard position < bytes.count else { throw error("the document ends where a value should be") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            default:
                if literal("null") { return .null }
                if literal("true") { return .bool(true) }
                if literal("false") { return .bool(false) }
                if literal("NaN") { return .number(.nan) }
                if literal("Infinity") { return .number(.infinity) }
                if literal("-Infinity") { return .number(-.infinity) }
                return .number(try number())
            }
        }

        mutating func object(depth: Int) throws -> OrderedJSON {
            position += 1
            var members: [(key: String, value: OrderedJSON)] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw error("an object key must be a string")
                }
                let key = try string()
                // Python's json keeps the last of a repeated key and this parser would read the
                // first: the same file would mean two things, so it means nothing.
                if members.contains(where: { $0.key == key }) {
                    var repeated = error("the key \"\(key)\" appears twice in one object")
                    repeated.repeatedKey = key
                    throw repeated
                }
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                    throw error("expected ':' after the key \"\(key)\"")
                }
                position += 1
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                guard position < bytes.count else { throw error("the document ends inside an object") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                guard bytes[position] == UInt8(ascii: "}") else { throw error("expected ',' or '}' in an object") }
                position += 1
                return .object(members)
            }
        }

        mutating func array(depth: Int) throws -> OrderedJSON {
            position += 1
            var items: [OrderedJSON] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(items)
            }
            while true {
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw error("the document ends inside an array") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                guard bytes[position] == UInt8(ascii: "]") else { throw error("expected ',' or ']' in an array") }
                position += 1
                return .array(items)
            }
        }

        mutating func hexQuad() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("a \\u escape is cut short") }
            var value: UInt32 = 0
            for byte in bytes[position..<(position + 4)] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw error("a \\u escape holds a character that is not hexadecimal")
                }
                value = value * 16 + UInt32(digit)
            }
            position += 4
            return value
        }

        mutating func string() throws -> String {
            position += 1  // the opening quote
            var scalars = String.UnicodeScalarView()
            var run: [UInt8] = []  // unescaped bytes, decoded as UTF-8 together
            func flush() {
                scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars)
                run.removeAll()
            }
            while true {
                guard position < bytes.count else { throw error("a string is not closed") }
                let byte = bytes[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    flush()
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    flush()
                    guard position < bytes.count else { throw error("a string ends in an escape") }
                    let escape = bytes[position]
                    position += 1
                    switch escape {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "u"):
                        var code = try hexQuad()
                        if (0xD800..<0xDC00).contains(code), position + 1 < bytes.count,
                            bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                        {
                            position += 2
                            let low = try hexQuad()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("a surrogate pair is broken") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                    default: throw error("a string holds an unknown escape")
                    }
                default:
                    guard byte >= 0x20 else { throw error("a string holds a raw control character") }
                    run.append(byte)
                }
            }
        }

        mutating func number() throws -> Double {
            let start = position
            while position < bytes.count,
                "+-0123456789.eE".utf8.contains(bytes[position])
            {
                position += 1
            }
            guard position > start, let value = Double(String(decoding: bytes[start..<position], as: UTF8.self))
            else {
                position = start
                throw error("expected a value")
            }
            return value
        }
    }
}
