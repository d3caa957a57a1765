import Foundation

/// Protocol Buffers' wire format, written by hand: enough for the messages DecisionFlow writes
/// (ONNX models) without a code generator. Fields are appended in the order the calls make.
public struct ProtobufWriter {
    /// The message's bytes so far.
    public private(set) var data = Data()

    /// An empty message.
    public init() {}

    /// A varint field (wire type 0): int32, int64, uint64, bool and enums.
    public mutating func varint(_ field: Int, _ value: Int64) {
        key(field, wire: 0)
        appendVarint(UInt64(bitPattern: value))
    }

    /// A 64-bit float field (wire type 1): `double`.
    public mutating func double(_ field: Int, _ value: Double) {
        key(field, wire: 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }

    /// A 32-bit float field (wire type 5).
    public mutating func float(_ field: Int, _ value: Float) {
        key(field, wire: 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }

    /// A length-delimited field of raw bytes (wire type 2).
    public mutating func bytes(_ field: Int, _ value: Data) {
        key(field, wire: 2)
        appendVarint(UInt64(value.count))
        data.append(value)
    }

    /// A string field, UTF-8.
    public mutating func string(_ field: Int, _ value: String) { bytes(field, Data(value.utf8)) }

    /// An embedded message field, written by `build`.
    public mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        build(&inner)
        bytes(field, inner.data)
    }

    /// A packed repeated int64 field.
    public mutating func packedInt64(_ field: Int, _ values: [Int64]) {
        var inner = ProtobufWriter()
        for value in values { inner.appendVarint(UInt64(bitPattern: value)) }
        bytes(field, inner.data)
    }

    /// A packed repeated float field.
    public mutating func packedFloat(_ field: Int, _ values: [Float]) {
        var packed = Data(capacity: 4 * values.count)
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { packed.append(contentsOf: $0) } }
        bytes(field, packed)
    }

    private mutating func key(_ field: Int, wire: UInt64) { appendVarint(UInt64(field) << 3 | wire) }

    private mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            data.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        data.append(UInt8(value))
    }
}

/// Reads Protocol Buffers' wire format field by field: for checking what `ProtobufWriter`
/// wrote, and for reading small messages back. Every read is bounds-checked; a malformed
/// message throws instead of trapping.
public struct ProtobufReader {
    /// One field as read: its number and its value.
    public enum Value: Equatable, Sendable {
        /// Wire type 0.
        case varint(UInt64)
        /// Wire type 1, the 8 bytes as an integer.
        case fixed64(UInt64)
        /// Wire type 2.
        case bytes(Data)
        /// Wire type 5, the 4 bytes as an integer.
        case fixed32(UInt32)
    }

    /// Why a message could not be read.
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        /// What is wrong, and where.
        public var description: String
    }

    private let bytes: [UInt8]
    private var offset = 0

    /// A reader of `data`, from its start.
    public init(_ data: Data) { bytes = [UInt8](data) }

    /// Every field of the message, in order.
    public static func fields(of data: Data) throws -> [(field: Int, value: Value)] {
        var reader = ProtobufReader(data)
        var fields: [(field: Int, value: Value)] = []
        while reader.offset < reader.bytes.count { fields.append(try reader.next()) }
        return fields
    }

    private mutating func next() throws -> (field: Int, value: Value) {
        let key = try varint()
        guard key >> 3 >= 1, key >> 3 <= UInt64(Int32.max) else { throw FormatError(description: "field number \(key >> 3)") }
        let field = Int(key >> 3)
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1: return (field, .fixed64(try fixed(8)))
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.count - offset) else {
                throw FormatError(description: "field \(field) claims \(length) bytes at offset \(offset); \(bytes.count - offset) remain")
            }
            let value = Data(bytes[offset..<(offset + Int(length))])
            offset += Int(length)
            return (field, .bytes(value))
        case 5: return (field, .fixed32(UInt32(try fixed(4))))
        default: throw FormatError(description: "wire type \(key & 7) of field \(field) at offset \(offset)")
        }
    }

    private mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard offset < bytes.count else { throw FormatError(description: "a varint runs past the end") }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte < 0x80 { return value }
        }
        throw FormatError(description: "a varint longer than 10 bytes at offset \(offset)")
    }

    private mutating func fixed(_ count: Int) throws -> UInt64 {
        guard count <= bytes.count - offset else { throw FormatError(description: "a fixed field runs past the end") }
        var value: UInt64 = 0
        for index in 0..<count { value |= UInt64(bytes[offset + index]) << UInt64(8 * index) }
        offset += count
        return value
    }
}
