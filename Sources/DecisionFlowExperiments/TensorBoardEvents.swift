import DecisionFlowSupport
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
        var message = ProtobufWriter()
        message.double(1, event.wallTime)  // wall_time
        message.varint(2, event.step)  // step
        if let version = event.fileVersion { message.string(3, version) }  // file_version
        if !event.scalars.isEmpty {
            message.message(5) { summary in  // summary
                for (tag, value) in event.scalars {
                    summary.message(1) { entry in  // Summary.value
                        entry.string(1, tag)  // tag
                        entry.float(2, value)  // simple_value
                    }
                }
            }
        }
        return message.data
    }

    private static func append32(_ value: UInt32, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
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

    private static func decodeEvent(_ payload: [UInt8]) throws -> Event {
        var event = Event(wallTime: 0, step: 0)
        do {
            for (field, value) in try ProtobufReader.fields(of: Data(payload)) {
                switch (field, value) {
                case (1, .fixed64(let bits)): event.wallTime = Double(bitPattern: bits)
                case (2, .varint(let step)): event.step = Int64(bitPattern: step)
                case (3, .bytes(let version)): event.fileVersion = String(decoding: version, as: UTF8.self)
                case (5, .bytes(let summary)):
                    for case (1, .bytes(let entry)) in try ProtobufReader.fields(of: summary) {
                        var tag = ""
                        var number: Float = .nan
                        for (entryField, entryValue) in try ProtobufReader.fields(of: entry) {
                            switch (entryField, entryValue) {
                            case (1, .bytes(let text)): tag = String(decoding: text, as: UTF8.self)
                            case (2, .fixed32(let bits)): number = Float(bitPattern: bits)
                            default: continue  // other fields are skipped, as protobuf readers do
                            }
                        }
                        event.scalars.append((tag, number))
                    }
                default: continue
                }
            }
        } catch let error as ProtobufReader.FormatError {
            throw FormatError(description: "\(error)")
        }
        return event
    }
}
