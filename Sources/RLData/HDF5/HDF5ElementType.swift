import CHDF5

/// The element type of an HDF5 dataset or attribute, as stored in the file.
public enum HDF5ElementType: Equatable, Sendable, CustomStringConvertible {
    /// IEEE floating point of the given width in bits (32 or 64).
    case float(bits: Int)
    /// Two's-complement integer of the given width in bits.
    case integer(bits: Int, signed: Bool)
    /// An enumeration with members FALSE = 0 and TRUE = 1: how h5py and NumPy store `bool`.
    case boolean
    /// Any other enumeration over an integer base type.
    case enumeration(bits: Int, signed: Bool)
    /// A string, of variable length or of a fixed byte length.
    case string(variableLength: Bool)
    /// A type this module does not read (compound, array, reference, opaque, ...).
    case unsupported(String)

    /// A NumPy-style name: `float32`, `int64`, `uint8`, `bool`, `string`.
    public var description: String {
        switch self {
        case .float(let bits): return "float\(bits)"
        case .integer(let bits, let signed): return "\(signed ? "int" : "uint")\(bits)"
        case .boolean: return "bool"
        case .enumeration(let bits, let signed): return "enum(\(signed ? "int" : "uint")\(bits))"
        case .string(let variable): return variable ? "string" : "string(fixed)"
        case .unsupported(let name): return name
        }
    }

    /// Whether values of this type can be read as numbers (`readArray(as:)`).
    public var isNumeric: Bool {
        switch self {
        case .float, .integer, .boolean, .enumeration: return true
        case .string, .unsupported: return false
        }
    }

    /// Classifies an HDF5 datatype identifier.
    static func classify(_ type: hid_t) -> HDF5ElementType {
        let bits = Int(H5Tget_size(type)) * 8
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            return .float(bits: bits)
        case H5T_INTEGER:
            return .integer(bits: bits, signed: H5Tget_sign(type) == H5T_SGN_2)
        case H5T_ENUM:
            let base = H5Tget_super(type)
            defer { HDF5Handle.close(base, kind: .datatype) }
            let signed = H5Tget_sign(base) == H5T_SGN_2
            if H5Tget_nmembers(type) == 2, enumName(type, value: 0) == "FALSE",
                enumName(type, value: 1) == "TRUE"
            {
                return .boolean
            }
            return .enumeration(bits: bits, signed: signed)
        case H5T_STRING:
            return .string(variableLength: H5Tis_variable_str(type) > 0)
        case H5T_COMPOUND: return .unsupported("compound")
        case H5T_ARRAY: return .unsupported("array")
        case H5T_REFERENCE: return .unsupported("reference")
        case H5T_OPAQUE: return .unsupported("opaque")
        case H5T_VLEN: return .unsupported("vlen")
        case H5T_BITFIELD: return .unsupported("bitfield")
        case H5T_TIME: return .unsupported("time")
        default: return .unsupported("unknown")
        }
    }

    /// The name of the member of enumeration `type` whose value is `value`, if any.
    private static func enumName(_ type: hid_t, value: Int64) -> String? {
        // The value must be passed in the enum's own base type, so convert it there first.
        let base = H5Tget_super(type)
        defer { HDF5Handle.close(base, kind: .datatype) }
        let size = Int(H5Tget_size(base))
        var raw = [UInt8](repeating: 0, count: max(size, 8))
        withUnsafeBytes(of: value.littleEndian) { source in
            for index in 0..<min(size, 8) { raw[index] = source[index] }
        }
        var name = [CChar](repeating: 0, count: 64)
        let status = raw.withUnsafeMutableBytes { bytes in
            H5Tenum_nameof(type, bytes.baseAddress, &name, name.count)
        }
        guard status >= 0 else {
            _ = H5Eclear2(swift_H5E_DEFAULT())
            return nil
        }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A Swift numeric type that HDF5 can convert stored values into.
///
/// HDF5 converts between all integer and floating-point widths itself while reading; this
/// protocol names the native memory type for each Swift type, and how to convert from the
/// raw integers of an enumeration (which HDF5 does not convert to plain numbers).
public protocol HDF5Numeric: Numeric, Sendable {
    /// The HDF5 native memory type with this type's layout.
    static var hdf5MemoryType: hid_t { get }
    /// Converts an enumeration's raw integer value (clamping integers, like HDF5 does on
    /// overflow, so a non-zero value never becomes zero).
    init(hdf5EnumValue value: Int64)
}

extension Float: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_FLOAT() }
    public init(hdf5EnumValue value: Int64) { self.init(value) }
}
extension Double: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_DOUBLE() }
    public init(hdf5EnumValue value: Int64) { self.init(value) }
}
extension Int8: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_INT8() }
    public init(hdf5EnumValue value: Int64) { self.init(clamping: value) }
}
extension Int16: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_INT16() }
    public init(hdf5EnumValue value: Int64) { self.init(clamping: value) }
}
extension Int32: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_INT32() }
    public init(hdf5EnumValue value: Int64) { self.init(clamping: value) }
}
extension Int64: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_INT64() }
    public init(hdf5EnumValue value: Int64) { self = value }
}
extension Int: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_INT64() }
    public init(hdf5EnumValue value: Int64) { self.init(value) }
}
extension UInt8: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_UINT8() }
    public init(hdf5EnumValue value: Int64) { self.init(clamping: value) }
}
extension UInt16: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_UINT16() }
    public init(hdf5EnumValue value: Int64) { self.init(clamping: value) }
}
extension UInt32: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_UINT32() }
    public init(hdf5EnumValue value: Int64) { self.init(clamping: value) }
}
extension UInt64: HDF5Numeric {
    public static var hdf5MemoryType: hid_t { swift_H5T_NATIVE_UINT64() }
    public init(hdf5EnumValue value: Int64) { self.init(clamping: value) }
}
