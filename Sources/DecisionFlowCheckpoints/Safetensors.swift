import DecisionFlow
import DecisionFlowSupport
import Foundation

/// A tensor read from (or to be written to) a safetensors file.
public struct SafetensorsTensor: Sendable, Equatable {
    /// The stored element type.
    public enum DType: String, Sendable, CaseIterable {
        /// IEEE single precision, what DecisionFlow writes.
        case float32 = "F32"
        /// IEEE double precision, converted to Float when decoded.
        case float64 = "F64"
        /// IEEE half precision, common in weights trained on GPUs.
        case float16 = "F16"
        /// bfloat16: float32's exponent with a 7-bit mantissa.
        case bfloat16 = "BF16"
        /// Signed 64-bit integers (timestep tensors).
        case int64 = "I64"
        /// Signed 32-bit integers.
        case int32 = "I32"
        /// GPT-2's causal-mask buffer (`attn.bias`) is stored as bytes.
        case uint8 = "U8"
        /// One byte per value, 0 or 1.
        case bool = "BOOL"

        var byteWidth: Int {
            switch self {
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            case .float16, .bfloat16: return 2
            case .uint8, .bool: return 1
            }
        }

        /// Whether the values are whole numbers (kept in `integers` too).
        var isInteger: Bool { [.int64, .int32, .uint8, .bool].contains(self) }
    }

    /// The element type in the file.
    public var dtype: DType
    /// The dimensions.
    public var shape: [Int]
    /// The tensor's bytes as stored (little-endian), sharing the file's buffer. Nothing is
    /// decoded when a file is read: `values` and `integers` convert on each access, so a
    /// tensor that is never used is never decoded.
    public let bytes: Data

    /// The values converted to Float (int64 values convert exactly up to 2^24), decoded now.
    public var values: [Float] {
        bytes.withUnsafeBytes { raw in
            Safetensors.decode(raw, count: bytes.count / dtype.byteWidth, dtype: dtype)
        }
    }

    /// The values as integers, for integer and boolean tensors (timesteps, masks), decoded
    /// now; nil for float tensors.
    public var integers: [Int]? {
        guard dtype.isInteger else { return nil }
        return bytes.withUnsafeBytes { raw in
            Safetensors.decodeIntegers(raw, count: bytes.count / dtype.byteWidth, dtype: dtype)
        }
    }

    /// Creates a float32 tensor.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "values do not fill shape \(shape)")
        self.dtype = .float32
        self.shape = shape
        self.bytes = values.withUnsafeBytes { Data($0) }
    }

    init(dtype: DType, shape: [Int], bytes: Data) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }
}

/// Why a safetensors file could not be read.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable {
    /// The file concerned.
    public var file: String
    /// The tensor concerned, if any.
    public var tensor: String?
    /// What is wrong, and what to do.
    public var problem: String

    public var description: String {
        "\(file)\(tensor.map { ": tensor '\($0)'" } ?? ""): \(problem)"
    }
}

/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping
/// each tensor name to its dtype, shape and byte range, optional `__metadata__` strings,
/// then the raw little-endian data.
public enum Safetensors {
    /// The tensors and metadata of a file.
    public struct Contents: Sendable {
        /// The tensors by name; each decodes only when its values are read.
        public var tensors: [String: SafetensorsTensor]
        /// The header's `__metadata__` strings.
        public var metadata: [String: String]
        /// The data section as stored (every tensor's bytes, in file order).
        public var body: Data = Data()
    }

    /// The largest header read: the format's own limit (100 MB).
    public static let maximumHeaderBytes = 100_000_000

    /// Reads a whole file.
    public static func read(_ path: String) throws -> Contents {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if let size, size > physicalMemoryBytes {
            throw SafetensorsError(
                file: path,
                problem:
                    "is \(size >> 20) MiB, more than this machine's memory (\(physicalMemoryBytes >> 20) MiB); it cannot be a model this machine can run"
            )
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SafetensorsError(file: path, problem: FileProblem.describe(error, reading: path))
        }
        return try parse(data, file: path)
    }

    /// Parses the bytes of a safetensors file; `file` names it in errors.
    ///
    /// Every size is checked before it is used: the header length, each shape (no negative
    /// dimension, no overflowing product), each byte range (inside the data, matching its
    /// shape). Tensors must tile the data section exactly, as the format requires: no two
    /// ranges overlap and no bytes are left over. A name given twice is an error, not a
    /// silent choice of one of them.
    public static func parse(_ data: Data, file: String) throws -> Contents {
        func fail(_ problem: String, tensor: String? = nil) -> SafetensorsError {
            SafetensorsError(file: file, tensor: tensor, problem: problem)
        }
        guard data.count >= 8 else {
            throw fail("is \(data.count) bytes, too short for a safetensors header; the file is truncated")
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | (UInt64($1.element) << (8 * UInt64($1.offset)))
        }
        guard headerLength <= UInt64(data.count - 8), headerLength <= UInt64(maximumHeaderBytes) else {
            throw fail(
                "declares a \(headerLength)-byte header but holds \(data.count) bytes (the format allows \(maximumHeaderBytes)); the file is truncated or not safetensors"
            )
        }
        let start = data.startIndex
        let headerData = data.subdata(in: (start + 8)..<(start + 8 + Int(headerLength)))
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw fail("has a header that is not JSON; the file is corrupt or not safetensors")
        }
        guard let header = parsed as? [String: Any] else { throw fail("has a header that is not a JSON object") }
        if let keys = JSONKeyScanner.topLevelKeyCount(headerData), keys != header.count {
            throw fail("names a tensor (or __metadata__) twice in its header; the file is corrupt or was forged")
        }
        let body = data[(start + 8 + Int(headerLength))...]
        var contents = Contents(tensors: [:], metadata: [:], body: body)
        var ranges: [(range: Range<Int>, name: String)] = []
        for (name, entry) in header {
            if name == "__metadata__" {
                guard let metadata = entry as? [String: String] else {
                    throw fail("has a __metadata__ entry that is not a map of strings to strings")
                }
                contents.metadata = metadata
                continue
            }
            guard let fields = entry as? [String: Any], let dtypeName = fields["dtype"] as? String,
                let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int],
                offsets.count == 2
            else {
                throw fail("has a malformed header entry (it needs dtype, shape and two data_offsets)", tensor: name)
            }
            guard let dtype = SafetensorsTensor.DType(rawValue: dtypeName) else {
                throw fail(
                    "has dtype \(dtypeName); supported: \(SafetensorsTensor.DType.allCases.map(\.rawValue).joined(separator: ", "))",
                    tensor: name)
            }
            guard shape.allSatisfy({ $0 >= 0 }), let count = CheckedSize.product(of: shape.map { Optional($0) }),
                let bytes = CheckedSize.product(count, dtype.byteWidth)
            else {
                throw fail("has shape \(shape), which is negative or too large to exist", tensor: name)
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= body.count, offsets[1] - offsets[0] == bytes
            else {
                throw fail(
                    "byte range \(offsets) does not fit shape \(shape) of \(dtypeName) inside the \(body.count)-byte data; the file is truncated or corrupt",
                    tensor: name)
            }
            ranges.append((offsets[0]..<offsets[1], name))
            // The tensor keeps a slice of the file's bytes; it is decoded only when used.
            let first = body.startIndex + offsets[0]
            contents.tensors[name] = SafetensorsTensor(dtype: dtype, shape: shape, bytes: body[first..<(first + bytes)])
        }
        // The ranges must tile the data: sorted, each starts where the previous one ended.
        var end = 0
        for (range, name) in ranges.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            guard range.lowerBound == end else {
                throw fail(
                    range.lowerBound < end
                        ? "overlaps the tensor before it (bytes \(range.lowerBound)..<\(end)); the file is corrupt or was forged"
                        : "leaves bytes \(end)..<\(range.lowerBound) of the data unaccounted for; the file is corrupt",
                    tensor: name)
            }
            end = range.upperBound
        }
        guard end == body.count else {
            throw fail("has \(body.count - end) bytes of data after its last tensor; the file is corrupt")
        }
        return contents
    }

    /// Converts `count` stored elements of `dtype` to Float.
    static func decode(_ raw: UnsafeRawBufferPointer, count: Int, dtype: SafetensorsTensor.DType) -> [Float] {
        func load<T: FixedWidthInteger>(_: T.Type, _ index: Int) -> T {
            T(littleEndian: raw.loadUnaligned(fromByteOffset: MemoryLayout<T>.size * index, as: T.self))
        }
        switch dtype {
        case .float32: return (0..<count).map { Float(bitPattern: load(UInt32.self, $0)) }
        case .float64: return (0..<count).map { Float(Double(bitPattern: load(UInt64.self, $0))) }
        case .float16: return (0..<count).map { Float(Float16(bitPattern: load(UInt16.self, $0))) }
        case .bfloat16: return (0..<count).map { Float(bitPattern: UInt32(load(UInt16.self, $0)) << 16) }
        case .int64, .int32, .uint8, .bool: return decodeIntegers(raw, count: count, dtype: dtype).map { Float($0) }
        }
    }

    /// Converts `count` stored elements of an integer or boolean `dtype` to Int.
    static func decodeIntegers(_ raw: UnsafeRawBufferPointer, count: Int, dtype: SafetensorsTensor.DType) -> [Int] {
        func load<T: FixedWidthInteger>(_: T.Type, _ index: Int) -> T {
            T(littleEndian: raw.loadUnaligned(fromByteOffset: MemoryLayout<T>.size * index, as: T.self))
        }
        switch dtype {
        case .int64: return (0..<count).map { Int(Int64(bitPattern: load(UInt64.self, $0))) }
        case .int32: return (0..<count).map { Int(Int32(bitPattern: load(UInt32.self, $0))) }
        default: return (0..<count).map { Int(load(UInt8.self, $0)) }
        }
    }

    /// Serializes tensors of any supported dtype from their little-endian bytes (in the given
    /// order), with metadata: for buffers such as GPT-2's U8 causal mask, and half-precision
    /// weights.
    public static func serialize(
        raw tensors: [(name: String, dtype: SafetensorsTensor.DType, shape: [Int], bytes: [UInt8])],
        metadata: [String: String]
    ) throws -> Data {
        for tensor in tensors {
            precondition(
                tensor.bytes.count == tensor.shape.reduce(1, *) * tensor.dtype.byteWidth,
                "\(tensor.name): bytes do not fill shape \(tensor.shape)")
        }
        return try assemble(
            tensors.map { ($0.name, $0.dtype, $0.shape, $0.bytes.count) }, metadata: metadata
        ) { data in
            for tensor in tensors { data.append(contentsOf: tensor.bytes) }
        }
    }

    /// Serializes float32 tensors (in name order, so output is reproducible) and metadata.
    public static func serialize(
        _ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)], metadata: [String: String]
    ) throws -> Data {
        try assemble(tensors.map { ($0.name, .float32, $0.shape, $0.values.count * 4) }, metadata: metadata) { data in
            // Every platform Swift runs this on is little-endian, the format's byte order.
            for tensor in tensors { data.append(tensor.values) }
        }
    }

    /// The file around the tensors: the header (each tensor's dtype, shape and byte range, in
    /// the given order, then the metadata), padded with spaces so the data starts 8-byte
    /// aligned as the format advises, then the data `appendData` writes in the same order.
    private static func assemble(
        _ tensors: [(name: String, dtype: SafetensorsTensor.DType, shape: [Int], byteCount: Int)],
        metadata: [String: String], appendData: (inout Data) -> Void
    ) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for tensor in tensors {
            header[tensor.name] = [
                "dtype": tensor.dtype.rawValue, "shape": tensor.shape, "data_offsets": [offset, offset + tensor.byteCount],
            ]
            offset += tensor.byteCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + headerData.count) % 8 != 0 { headerData.append(0x20) }
        var data = Data(capacity: 8 + headerData.count + offset)
        withUnsafeBytes(of: UInt64(headerData.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(headerData)
        appendData(&data)
        return data
    }
}

/// Counts the keys of a JSON object's top level without building it, so a key given twice
/// (which a JSON parser silently merges) can be told apart from distinct keys.
enum JSONKeyScanner {
    /// The number of top-level keys, or nil when the text is not a JSON object this scanner
    /// follows (the JSON parser then reports the problem).
    static func topLevelKeyCount(_ data: Data) -> Int? {
        let bytes = [UInt8](data)
        var index = 0
        func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }
        /// Skips a string starting at its opening quote.
        func skipString() -> Bool {
            guard index < bytes.count, bytes[index] == 0x22 else { return false }
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case 0x5C: index += 2  // a backslash escapes the next byte
                case 0x22:
                    index += 1
                    return true
                default: index += 1
                }
            }
            return false
        }
        /// Skips one value: a string, or anything up to the `,` or `}` that ends it at depth 0.
        func skipValue() -> Bool {
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case 0x22: if !skipString() { return false }
                case 0x7B, 0x5B:
                    depth += 1
                    index += 1
                case 0x7D, 0x5D:
                    if depth == 0 { return true }
                    depth -= 1
                    index += 1
                case 0x2C where depth == 0: return true
                default: index += 1
                }
            }
            return false
        }
        skipSpace()
        guard index < bytes.count, bytes[index] == 0x7B else { return nil }
        index += 1
        var count = 0
        while true {
            skipSpace()
            guard index < bytes.count else { return nil }
            if bytes[index] == 0x7D { return count }
            guard skipString() else { return nil }
            skipSpace()
            guard index < bytes.count, bytes[index] == 0x3A else { return nil }
            index += 1
            guard skipValue() else { return nil }
            count += 1
            guard index < bytes.count else { return nil }
            if bytes[index] == 0x2C {
                index += 1
            } else if bytes[index] != 0x7D {
                return nil
            }
        }
    }
}
