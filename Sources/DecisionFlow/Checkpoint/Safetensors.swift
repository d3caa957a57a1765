import Foundation

/// A tensor read from (or to be written to) a safetensors file.
public struct SafetensorsTensor: Sendable, Equatable {
    /// The stored element type.
    public enum DType: String, Sendable {
        case float32 = "F32"
        case float64 = "F64"
        case int64 = "I64"
        case int32 = "I32"

        var byteWidth: Int {
            switch self {
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            }
        }
    }

    /// The element type in the file.
    public var dtype: DType
    /// The dimensions.
    public var shape: [Int]
    /// The values converted to Float (int64 values convert exactly up to 2^24).
    public var values: [Float]
    /// The values as integers, for int64/int32 tensors (timesteps); nil for float tensors.
    public var integers: [Int]?

    /// Creates a float32 tensor.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "values do not fill shape \(shape)")
        self.dtype = .float32
        self.shape = shape
        self.values = values
        self.integers = nil
    }

    init(dtype: DType, shape: [Int], values: [Float], integers: [Int]?) {
        self.dtype = dtype
        self.shape = shape
        self.values = values
        self.integers = integers
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
        public var tensors: [String: SafetensorsTensor]
        public var metadata: [String: String]
    }

    /// Reads a whole file.
    public static func read(_ path: String) throws -> Contents {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SafetensorsError(
                file: path, problem: "cannot be read (\(error.localizedDescription)); check the path")
        }
        return try parse(data, file: path)
    }

    /// Parses the bytes of a safetensors file; `file` names it in errors.
    public static func parse(_ data: Data, file: String) throws -> Contents {
        guard data.count >= 8 else {
            throw SafetensorsError(
                file: file, problem: "is \(data.count) bytes, too short for a safetensors header; the file is truncated"
            )
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | (UInt64($1.element) << (8 * UInt64($1.offset)))
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw SafetensorsError(
                file: file,
                problem:
                    "declares a \(headerLength)-byte header but holds \(data.count) bytes; the file is truncated or not safetensors"
            )
        }
        let headerData = data.subdata(in: 8..<(8 + Int(headerLength)))
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw SafetensorsError(
                file: file, problem: "has a header that is not JSON; the file is corrupt or not safetensors")
        }
        guard let header = parsed as? [String: Any] else {
            throw SafetensorsError(file: file, problem: "has a header that is not a JSON object")
        }
        let body = data.subdata(in: (8 + Int(headerLength))..<data.count)
        var contents = Contents(tensors: [:], metadata: [:])
        for (name, entry) in header {
            if name == "__metadata__" {
                contents.metadata = (entry as? [String: String]) ?? [:]
                continue
            }
            guard let fields = entry as? [String: Any], let dtypeName = fields["dtype"] as? String,
                let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int],
                offsets.count == 2
            else {
                throw SafetensorsError(file: file, tensor: name, problem: "has a malformed header entry")
            }
            guard let dtype = SafetensorsTensor.DType(rawValue: dtypeName) else {
                throw SafetensorsError(
                    file: file, tensor: name,
                    problem: "has dtype \(dtypeName); only F32, F64, I64 and I32 are supported")
            }
            let count = shape.reduce(1, *)
            guard offsets[0] >= 0, offsets[1] <= body.count, offsets[1] - offsets[0] == count * dtype.byteWidth else {
                throw SafetensorsError(
                    file: file, tensor: name,
                    problem:
                        "byte range \(offsets) does not fit shape \(shape) of \(dtypeName) inside the \(body.count)-byte body; the file is truncated or corrupt"
                )
            }
            contents.tensors[name] = body.withUnsafeBytes { raw in
                decode(raw, offset: offsets[0], count: count, dtype: dtype, shape: shape)
            }
        }
        return contents
    }

    private static func decode(
        _ raw: UnsafeRawBufferPointer, offset: Int, count: Int, dtype: SafetensorsTensor.DType, shape: [Int]
    ) -> SafetensorsTensor {
        switch dtype {
        case .float32:
            let values = (0..<count).map {
                Float(
                    bitPattern: UInt32(
                        littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * $0, as: UInt32.self)))
            }
            return SafetensorsTensor(dtype: dtype, shape: shape, values: values, integers: nil)
        case .float64:
            let values = (0..<count).map {
                Float(
                    Double(
                        bitPattern: UInt64(
                            littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8 * $0, as: UInt64.self))))
            }
            return SafetensorsTensor(dtype: dtype, shape: shape, values: values, integers: nil)
        case .int64:
            let integers = (0..<count).map {
                Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8 * $0, as: Int64.self)))
            }
            return SafetensorsTensor(dtype: dtype, shape: shape, values: integers.map { Float($0) }, integers: integers)
        case .int32:
            let integers = (0..<count).map {
                Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * $0, as: Int32.self)))
            }
            return SafetensorsTensor(dtype: dtype, shape: shape, values: integers.map { Float($0) }, integers: integers)
        }
    }

    /// Serializes float32 tensors (in name order, so output is reproducible) and metadata.
    public static func serialize(
        _ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)], metadata: [String: String]
    ) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for tensor in tensors {
            let bytes = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data starts 8-byte aligned, as the format advises.
        while (8 + headerData.count) % 8 != 0 { headerData.append(0x20) }
        var data = Data(capacity: 8 + headerData.count + offset)
        withUnsafeBytes(of: UInt64(headerData.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(headerData)
        // Every platform Swift runs this on is little-endian, the format's byte order.
        for tensor in tensors { data.append(tensor.values) }
        return data
    }
}
