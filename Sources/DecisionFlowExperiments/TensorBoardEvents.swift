import DecisionFlowTraining
import Foundation

/// TensorBoard's event files, written by hand: the small subset of TensorFlow's format that
/// scalar curves need, so a run directory opens in `tensorboard --logdir runs/` with no Python
/// on the training side.
///
/// A file is a sequence of TFRecords: the payload's length (UInt64, little-endian), a masked
/// CRC-32C of those 8 bytes, the payload, and a masked CRC-32C of the payload. Each payload is
/// an `Event` protobuf: `wall_time` (field 1, double), `step` (field 2, int64) and either
/// `file_version` (field 3, `brain.Event:2`, the first record) or a `Summary` (field 5) whose
/// values (field 1) each hold a `tag` (field 1) and a `simple_value` (field 2, float).
public enum TensorBoardEvents {

    /// One decoded event.
    public struct Event: Equatable, Sendable {
        /// Seconds since 1970 when the event was recorded.
        public var wallTime: Double
        /// The training step the scalars belong to.
        public var step: Int64
        /// `brain.Event:2` on a file's first event, nil on the others.
        public var fileVersion: String?
        /// The scalars, by tag, in file order.
        public var scalars: [(tag: String, value: Float)]

        public static func == (a: Event, b: Event) -> Bool {
            a.wallTime == b.wallTime && a.step == b.step && a.fileVersion == b.fileVersion
                && a.scalars.map(\.tag) == b.scalars.map(\.tag) && a.scalars.map(\.value) == b.scalars.map(\.value)
        }

        /// Creates an event; see the properties for the meaning of each value.
        public init(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [(tag: String, value: Float)] = []) {
            self.wallTime = wallTime
            self.step = step
            self.fileVersion = fileVersion
            self.scalars = scalars
        }
    }

    /// The scalars a log line becomes, under the tags TensorBoard shows.
    public static func scalars(of line: LogLine) -> [(tag: String, value: Float)] {
        var result: [(tag: String, value: Float)] = [
            ("train/loss", Float(line.loss)), ("train/learning_rate", line.learningRate),
            ("train/grad_norm", line.gradientNorm), ("train/steps_per_second", Float(line.stepsPerSecond)),
        ]
        if let score = line.normalizedScore { result.append(("eval/normalized_score", Float(score))) }
        return result
    }

    /// The whole file for a run that started at `startTime` (seconds since 1970) and logged
    /// `lines`: the version record, then one event per line, at the start time plus the line's
    /// training time.
    public static func file(startTime: Double, lines: [LogLine]) -> Data {
        var data = record(encode(Event(wallTime: startTime, step: 0, fileVersion: "brain.Event:2")))
        for line in lines { data.append(record(for: line, startTime: startTime)) }
        return data
    }

    /// A file of `events`, in order, each framed as a record (what `parse` read back).
    public static func file(events: [Event]) -> Data {
        var data = Data()
        for event in events { data.append(record(encode(event))) }
        return data
    }

    /// The record of one log line.
    public static func record(for line: LogLine, startTime: Double) -> Data {
        record(encode(Event(wallTime: startTime + line.elapsedSeconds, step: Int64(line.step), scalars: scalars(of: line))))
    }

    // MARK: - Encoding

    /// Frames `payload` as a TFRecord.
    static func record(_ payload: Data) -> Data {
        var data = Data(capacity: payload.count + 16)
        var length = UInt64(payload.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        data.append(lengthBytes)
        append32(maskedCRC32C(lengthBytes), to: &data)
        data.append(payload)
        append32(maskedCRC32C(payload), to: &data)
        return data
    }

    static func encode(_ event: Event) -> Data {
        var data = Data()
        data.append(0x09)  // field 1, 64-bit
        append64(event.wallTime.bitPattern, to: &data)
        data.append(0x10)  // field 2, varint
        appendVarint(UInt64(bitPattern: event.step), to: &data)
        if let version = event.fileVersion {
            data.append(0x1A)  // field 3, length-delimited
            appendBytes(Data(version.utf8), to: &data)
        }
        if !event.scalars.isEmpty {
            var summary = Data()
            for (tag, value) in event.scalars {
                var entry = Data()
                entry.append(0x0A)  // Value.tag
                appendBytes(Data(tag.utf8), to: &entry)
                entry.append(0x15)  // Value.simple_value, 32-bit
                append32(value.bitPattern, to: &entry)
                summary.append(0x0A)  // Summary.value
                appendBytes(entry, to: &summary)
            }
            data.append(0x2A)  // field 5, length-delimited
            appendBytes(summary, to: &data)
        }
        return data
    }

    private static func append32(_ value: UInt32, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    private static func append64(_ value: UInt64, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    private static func appendVarint(_ value: UInt64, to data: inout Data) {
        var rest = value
        while rest >= 0x80 {
            data.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        data.append(UInt8(rest))
    }

    private static func appendBytes(_ bytes: Data, to data: inout Data) {
        appendVarint(UInt64(bytes.count), to: &data)
        data.append(bytes)
    }

    // MARK: - CRC-32C

    /// The Castagnoli polynomial, reflected.
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// CRC-32C of `bytes` (iSCSI's checksum, as TFRecord uses).
    public static func crc32c<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masking of a CRC, which keeps a CRC of data that holds CRCs well distributed.
    public static func maskedCRC32C<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        let crc = crc32c(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    // MARK: - Decoding

    /// Why an event file could not be read back.
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Reads every record of an event file, verifying both CRCs of each, and decodes the
    /// fields written here (other fields are skipped, as protobuf readers do).
    public static func parse(_ data: Data) throws -> [Event] {
        let bytes = [UInt8](data)
        var events: [Event] = []
        var offset = 0
        func fail(_ problem: String) -> FormatError {
            FormatError(description: "record \(events.count) at byte \(offset): \(problem)")
        }
        func load32(_ at: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
        }
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { throw fail("the file ends inside a record header") }
            let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
            guard load32(offset + 8) == maskedCRC32C(bytes[offset..<(offset + 8)]) else {
                throw fail("the length's CRC does not match")
            }
            guard length <= UInt64(bytes.count - offset - 16) else { throw fail("the record is cut short") }
            let payload = Array(bytes[(offset + 12)..<(offset + 12 + Int(length))])
            guard load32(offset + 12 + Int(length)) == maskedCRC32C(payload) else {
                throw fail("the payload's CRC does not match")
            }
            events.append(try decodeEvent(payload))
            offset += 16 + Int(length)
        }
        return events
    }

    /// A protobuf reader over the wire types the event format uses.
    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        var atEnd: Bool { position >= bytes.count }

        mutating func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < bytes.count, shift < 64 else { throw FormatError(description: "a varint is cut short") }
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
        }

        mutating func fixed(_ count: Int) throws -> UInt64 {
            guard bytes.count - position >= count else { throw FormatError(description: "a fixed-width field is cut short") }
            defer { position += count }
            return (0..<count).reduce(UInt64(0)) { $0 | UInt64(bytes[position + $1]) << (8 * UInt64($1)) }
        }

        mutating func lengthDelimited() throws -> [UInt8] {
            let length = try varint()
            guard length <= UInt64(bytes.count - position) else {
                throw FormatError(description: "a length-delimited field is cut short")
            }
            defer { position += Int(length) }
            return Array(bytes[position..<(position + Int(length))])
        }

        /// Reads the next field: its number and wire type; the caller reads or skips the value.
        mutating func key() throws -> (field: UInt64, wire: UInt64) {
            let key = try varint()
            return (key >> 3, key & 7)
        }

        mutating func skip(wire: UInt64) throws {
            switch wire {
            case 0: _ = try varint()
            case 1: _ = try fixed(8)
            case 2: _ = try lengthDelimited()
            case 5: _ = try fixed(4)
            default: throw FormatError(description: "wire type \(wire) is not used by event files")
            }
        }
    }

    private static func decodeEvent(_ payload: [UInt8]) throws -> Event {
        var reader = Reader(bytes: payload)
        var event = Event(wallTime: 0, step: 0)
        while !reader.atEnd {
            let (field, wire) = try reader.key()
            switch (field, wire) {
            case (1, 1): event.wallTime = Double(bitPattern: try reader.fixed(8))
            case (2, 0): event.step = Int64(bitPattern: try reader.varint())
            case (3, 2): event.fileVersion = String(decoding: try reader.lengthDelimited(), as: UTF8.self)
            case (5, 2):
                var summary = Reader(bytes: try reader.lengthDelimited())
                while !summary.atEnd {
                    let (valueField, valueWire) = try summary.key()
                    guard valueField == 1, valueWire == 2 else {
                        try summary.skip(wire: valueWire)
                        continue
                    }
                    var value = Reader(bytes: try summary.lengthDelimited())
                    var tag = ""
                    var number: Float = .nan
                    while !value.atEnd {
                        let (f, w) = try value.key()
                        switch (f, w) {
                        case (1, 2): tag = String(decoding: try value.lengthDelimited(), as: UTF8.self)
                        case (2, 5): number = Float(bitPattern: UInt32(try value.fixed(4)))
                        default: try value.skip(wire: w)
                        }
                    }
                    event.scalars.append((tag, number))
                }
            default: try reader.skip(wire: wire)
            }
        }
        return event
    }
}
