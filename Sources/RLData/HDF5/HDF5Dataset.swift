import CHDF5
import DecisionFlowSupport

#if canImport(Glibc)
    import Glibc
#endif

/// An open dataset: its shape, element type, storage layout, and reads of all or some rows.
///
/// Reads convert to the requested Swift type inside libhdf5 (float64 files read straight
/// into `[Float]`), so no second copy of the data is made.
public final class HDF5Dataset {
    /// The file the dataset belongs to; kept alive as long as the dataset is.
    public let file: HDF5File
    /// The path inside the file, e.g. `observations`.
    public let path: String
    /// The dimensions; empty for a scalar dataset. Grows when rows are appended.
    public internal(set) var shape: [Int]
    /// The stored element type.
    public let elementType: HDF5ElementType
    /// Chunk dimensions, or nil for contiguous or compact storage.
    public let chunkShape: [Int]?
    /// The filters applied to each chunk, in pipeline order (e.g. `shuffle`, `deflate(4)`).
    public let filters: [HDF5Filter]

    let handle: HDF5Handle
    let fileType: HDF5Handle

    init(file: HDF5File, path: String) throws {
        HDF5Call.silence()
        self.file = file
        self.path = path
        // Opened first, and the path walked only to explain a failure: readers open tens of
        // thousands of datasets (a Minari file is a group per episode).
        let id = H5Dopen2(file.handle.id, path, swift_H5P_DEFAULT())
        if id < 0 {
            let failure = HDF5Call.error("open dataset", file: file.path, object: path)  // before `contains` clears it
            guard file.contains(path) else {
                throw HDF5Error(operation: "open dataset", file: file.path, objectPath: path, stack: ["no such dataset"])
            }
            throw failure
        }
        handle = HDF5Handle(id, kind: .dataset)
        fileType = HDF5Handle(
            try HDF5Call.handle(H5Dget_type(id), "read the type of", file: file.path, object: path),
            kind: .datatype)
        elementType = HDF5ElementType.classify(fileType.id)
        // Numbers (and the enumerations behind booleans) take at most 16 bytes; a larger
        // declared size is a damaged or forged type, and converting it would allocate that
        // much per element.
        let elementBytes = H5Tget_size(fileType.id)
        if elementType.isNumeric, elementBytes == 0 || elementBytes > 16 {
            throw HDF5Error(
                operation: "open dataset", file: file.path, objectPath: path,
                stack: ["its number type declares \(elementBytes) bytes per element; the file is corrupt or was forged"])
        }
        shape = try HDF5Dataset.dimensions(of: id, file: file.path, path: path)

        let plist = try HDF5Call.handle(
            H5Dget_create_plist(id), "read the creation properties of", file: file.path, object: path)
        defer { HDF5Handle.close(plist, kind: .propertyList) }
        if H5Pget_layout(plist) == H5D_CHUNKED {
            var chunk = [hsize_t](repeating: 0, count: max(shape.count, 1))
            let rank = H5Pget_chunk(plist, Int32(chunk.count), &chunk)
            chunkShape = rank > 0 ? chunk.prefix(Int(rank)).map { Int($0) } : nil
        } else {
            chunkShape = nil
        }
        var filters: [HDF5Filter] = []
        for index in 0..<max(H5Pget_nfilters(plist), 0) {
            var flags: UInt32 = 0
            var count = 4
            var values = [UInt32](repeating: 0, count: 4)
            var name = [CChar](repeating: 0, count: 64)
            var config: UInt32 = 0
            let filter = H5Pget_filter2(
                plist, UInt32(index), &flags, &count, &values, name.count, &name, &config)
            switch filter {
            case H5Z_FILTER_DEFLATE: filters.append(.deflate(level: count > 0 ? Int(values[0]) : -1))
            case H5Z_FILTER_SHUFFLE: filters.append(.shuffle)
            case H5Z_FILTER_FLETCHER32: filters.append(.fletcher32)
            default: filters.append(.other(Int(filter)))
            }
        }
        self.filters = filters
    }

    private static func dimensions(of dataset: hid_t, file: String, path: String) throws -> [Int] {
        let space = try HDF5Call.handle(
            H5Dget_space(dataset), "read the shape of", file: file, object: path)
        defer { HDF5Handle.close(space, kind: .dataspace) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { throw HDF5Call.error("read the shape of", file: file, object: path) }
        var dims = [hsize_t](repeating: 0, count: rank)
        if rank > 0 {
            try HDF5Call.check(
                H5Sget_simple_extent_dims(space, &dims, nil), "read the shape of", file: file,
                object: path)
        }
        // A file declares its sizes: refuse any that do not fit an Int, or whose element
        // counts overflow, so every size computed from the shape below is exact.
        guard dims.allSatisfy({ $0 <= UInt64(Int.max) }),
            checkedProduct(dims.map { Int($0) }) != nil, checkedProduct(dims.dropFirst().map { Int($0) }) != nil
        else {
            throw HDF5Error(
                operation: "read the shape of", file: file, objectPath: path,
                stack: ["the file declares shape \(dims), too large to exist; the file is corrupt or was forged"])
        }
        return dims.map { Int($0) }
    }

    /// The number of elements: the product of the shape (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The number of rows along the first dimension (1 for a scalar).
    public var rowCount: Int { shape.first ?? 1 }

    /// Elements per row: the product of every dimension after the first.
    public var rowWidth: Int { shape.dropFirst().reduce(1, *) }

    /// The bytes the file stores for the dataset's data (its allocated chunks, compressed):
    /// what it really holds, whatever its shape declares.
    public var storedBytes: Int { Int(clamping: H5Dget_storage_size(handle.id)) }

    /// The most a dataset's values may outweigh its stored bytes: deflate cannot compress
    /// better than about 1032 to 1, so a larger ratio means chunks that were never written, a
    /// shape that declares data the file does not hold.
    public static let maximumExpansion = 2048

    /// Why reading `rows` rows would read data the file does not hold, if it would: a shape
    /// that declares far more values than its stored bytes can expand to (a file of a few
    /// kilobytes declaring 2·10⁸ steps). Checked before a read allocates anything.
    public func declaredSizeProblem(rows: Int) -> String? {
        guard elementType.isNumeric else { return nil }
        let elementBytes = Int(H5Tget_size(fileType.id))
        guard let declared = CheckedSize.product(rows, rowWidth, elementBytes) else {
            return "declares \(rows) rows of \(rowWidth) values, more bytes than can be counted"
        }
        let stored = storedBytes
        guard declared > (1 << 20), declared / Self.maximumExpansion > stored else { return nil }
        return
            "declares \(rows) rows of \(rowWidth) values (\(declared >> 20) MiB), but the file stores only \(stored) bytes for them; the file is truncated or forged"
    }

    // MARK: - Reading numbers

    /// Reads the whole dataset, converted to `T`, in row-major order.
    public func readArray<T: HDF5Numeric>(as type: T.Type = T.self) throws -> [T] {
        try readRows(0..<rowCount, as: type)
    }

    /// Reads rows `rows` of the first dimension (all of every other dimension).
    ///
    /// Only the chunks that hold those rows are read and decompressed.
    public func readRows<T: HDF5Numeric>(_ rows: Range<Int>, as type: T.Type = T.self) throws -> [T] {
        guard rows.lowerBound >= 0, rows.upperBound <= rowCount else {
            throw HDF5Error(
                operation: "read rows \(rows.lowerBound)..<\(rows.upperBound) of", file: file.path,
                objectPath: path, stack: ["the dataset has \(rowCount) rows"])
        }
        let count = rows.count * rowWidth  // exact: at most elementCount, checked when opened
        if rows.count == rowCount, let problem = declaredSizeProblem(rows: rows.count) {
            throw HDF5Error(operation: "read", file: file.path, objectPath: path, stack: [problem])
        }
        let limit = HDF5Dataset.readLimitBytes
        guard count <= limit / MemoryLayout<T>.stride else {
            throw HDF5Error(
                operation: "read", file: file.path, objectPath: path,
                stack: [
                    "reading \(rows.count) rows of \(rowWidth) values takes \(count / 1_048_576 * MemoryLayout<T>.stride) MiB, more than the \(limit >> 20) MiB allowed (this machine's memory); read fewer rows at a time"
                ])
        }
        return try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            try readRows(rows, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            initialized = count
        }
    }

    /// Reads rows `rows` into a caller-owned buffer of exactly `rows.count * rowWidth` elements.
    public func readRows<T: HDF5Numeric>(
        _ rows: Range<Int>, into buffer: UnsafeMutableBufferPointer<T>
    ) throws {
        HDF5Call.silence()
        precondition(buffer.count == rows.count * rowWidth, "buffer size does not match the rows")
        guard elementType.isNumeric else {
            throw HDF5Error(
                operation: "read numbers from", file: file.path, objectPath: path,
                stack: ["the dataset holds \(elementType), not numbers"])
        }
        guard rows.lowerBound >= 0, rows.upperBound <= rowCount else {
            throw HDF5Error(
                operation: "read rows \(rows.lowerBound)..<\(rows.upperBound) of", file: file.path,
                objectPath: path, stack: ["the dataset has \(rowCount) rows"])
        }
        if rows.isEmpty { return }
        try withRowSelection(rows) { memorySpace, fileSpace in
            switch elementType {
            case .boolean, .enumeration:
                // HDF5 converts enumerations only to other enumerations, so read the raw
                // integers in the enum's own native layout and widen them here.
                try readEnumeration(memorySpace: memorySpace, fileSpace: fileSpace, into: buffer)
            default:
                let transfer = try transferProperties(elements: buffer.count)
                try withExtendedLifetime(transfer) {
                    try HDF5Call.check(
                        H5Dread(
                            handle.id, T.hdf5MemoryType, memorySpace, fileSpace, transfer?.id ?? swift_H5P_DEFAULT(),
                            buffer.baseAddress),
                        "read", file: file.path, object: path)
                }
            }
        }
    }

    /// Reads the whole dataset as booleans: any non-zero value is `true`.
    ///
    /// Accepts h5py's bool enumeration, integers (uint8 in old D4RL files) and floats.
    public func readBooleans() throws -> [Bool] {
        switch elementType {
        // Narrow temporaries: HDF5 clamps on overflow, so non-zero integers stay non-zero.
        case .float:
            let values = try readArray(as: Float.self)
            if let row = values.firstIndex(where: { !$0.isFinite }) {
                throw HDF5Error(
                    operation: "read flags from", file: file.path, objectPath: path,
                    stack: ["row \(row) holds \(values[row]); a flag must be 0 or 1"])
            }
            return values.map { $0 != 0 }
        default: return try readArray(as: Int8.self).map { $0 != 0 }
        }
    }

    /// Reads a scalar (or one-element) dataset as a number.
    public func readScalar<T: HDF5Numeric>(as type: T.Type = T.self) throws -> T {
        guard elementCount == 1 else {
            throw HDF5Error(
                operation: "read a scalar from", file: file.path, objectPath: path,
                stack: ["the dataset has shape \(shape), not one element"])
        }
        return try readArray(as: type)[0]
    }

    /// Transfer properties for a read of `elements` values, or nil for libhdf5's defaults. A
    /// read that converts types (float64 to float32, an enumeration to integers) goes through
    /// a conversion buffer that libhdf5 allocates and zeroes at 1 MiB by default, per read; a
    /// Minari dataset reads a few values per episode tens of thousands of times, so a small
    /// read gets a buffer of its own size (16 bytes per element covers any numeric type).
    private func transferProperties(elements: Int) throws -> HDF5Handle? {
        let bytes = max(elements, 1) * 16
        guard bytes < HDF5Dataset.defaultConversionBufferBytes else { return nil }
        let list = HDF5Handle(
            try HDF5Call.handle(H5Pcreate(swift_H5P_DATASET_XFER()), "read", file: file.path, object: path),
            kind: .propertyList)
        try HDF5Call.check(H5Pset_buffer(list.id, bytes, nil, nil), "read", file: file.path, object: path)
        return list
    }

    /// libhdf5's default type-conversion buffer.
    static let defaultConversionBufferBytes = 1 << 20

    /// Runs `body` with the file's dataspace selecting `rows` (whole rows of every further
    /// dimension) and a memory dataspace of their shape: the one home of row selection, for
    /// reading and writing. `operation` names the work in errors.
    func withRowSelection(
        _ rows: Range<Int>, operation: String = "select rows of",
        _ body: (_ memorySpace: hid_t, _ fileSpace: hid_t) throws -> Void
    ) throws {
        if shape.isEmpty {  // a scalar: the whole (one-element) space
            try body(swift_H5S_ALL(), swift_H5S_ALL())
            return
        }
        let fileSpace = try HDF5Call.handle(H5Dget_space(handle.id), operation, file: file.path, object: path)
        defer { HDF5Handle.close(fileSpace, kind: .dataspace) }
        var start = [hsize_t](repeating: 0, count: shape.count)
        var count = shape.map { hsize_t($0) }
        start[0] = hsize_t(rows.lowerBound)
        count[0] = hsize_t(rows.count)
        try HDF5Call.check(
            H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil), operation, file: file.path,
            object: path)
        let memorySpace = try HDF5Call.handle(
            H5Screate_simple(Int32(count.count), &count, nil), operation, file: file.path, object: path)
        defer { HDF5Handle.close(memorySpace, kind: .dataspace) }
        try body(memorySpace, fileSpace)
    }

    private func readEnumeration<T: HDF5Numeric>(
        memorySpace: hid_t, fileSpace: hid_t, into buffer: UnsafeMutableBufferPointer<T>
    ) throws {
        let memoryType = try HDF5Call.handle(
            H5Tget_native_type(fileType.id, H5T_DIR_ASCEND), "read", file: file.path, object: path)
        defer { HDF5Handle.close(memoryType, kind: .datatype) }
        let base = H5Tget_super(memoryType)
        defer { HDF5Handle.close(base, kind: .datatype) }
        let signed = H5Tget_sign(base) == H5T_SGN_2
        let width = Int(H5Tget_size(memoryType))
        var raw = [UInt8](repeating: 0, count: buffer.count * width)
        let transfer = try transferProperties(elements: buffer.count)
        defer { withExtendedLifetime(transfer) {} }
        try raw.withUnsafeMutableBytes { bytes in
            try HDF5Call.check(
                H5Dread(
                    handle.id, memoryType, memorySpace, fileSpace, transfer?.id ?? swift_H5P_DEFAULT(),
                    bytes.baseAddress),
                "read", file: file.path, object: path)
            for index in 0..<buffer.count {
                let offset = index * width
                let value: Int64
                switch (width, signed) {
                case (1, true): value = Int64(bytes.load(fromByteOffset: offset, as: Int8.self))
                case (1, false): value = Int64(bytes.load(fromByteOffset: offset, as: UInt8.self))
                case (2, true): value = Int64(bytes.loadUnaligned(fromByteOffset: offset, as: Int16.self))
                case (2, false): value = Int64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
                case (4, true): value = Int64(bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self))
                case (4, false): value = Int64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                default: value = bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self)
                }
                buffer[index] = T(hdf5EnumValue: value)
            }
        }
    }

    // MARK: - Reading strings

    /// Reads a scalar string dataset (variable or fixed length), as h5py writes `metadata/*`.
    public func readString() throws -> String {
        HDF5Call.silence()
        guard case .string = elementType else {
            throw HDF5Error(
                operation: "read a string from", file: file.path, objectPath: path,
                stack: ["the dataset holds \(elementType), not a string"])
        }
        guard elementCount == 1 else {
            throw HDF5Error(
                operation: "read a string from", file: file.path, objectPath: path,
                stack: ["the dataset has shape \(shape), not one string"])
        }
        return try HDF5StringReader.read(
            fileType: fileType.id, file: file.path, object: path
        ) { memoryType, buffer in
            H5Dread(handle.id, memoryType, swift_H5S_ALL(), swift_H5S_ALL(), swift_H5P_DEFAULT(), buffer)
        }
    }
}

/// A filter in a chunked dataset's pipeline.
public enum HDF5Filter: Equatable, Sendable, CustomStringConvertible {
    /// gzip compression at the given level.
    case deflate(level: Int)
    /// Byte shuffling before compression.
    case shuffle
    /// A checksum per chunk.
    case fletcher32
    /// Any other filter, by its registered identifier.
    case other(Int)

    public var description: String {
        switch self {
        case .deflate(let level): return "gzip(\(level))"
        case .shuffle: return "shuffle"
        case .fletcher32: return "fletcher32"
        case .other(let id): return Self.knownNames[id].map { "\($0)(\(id))" } ?? "filter(\(id))"
        }
    }

    /// Names of common third-party filters, from the HDF Group's registry.
    static let knownNames: [Int: String] = [
        32000: "lzf", 32001: "blosc", 307: "bzip2", 32004: "lz4", 32008: "bitshuffle", 32015: "zstd",
    ]

    /// Whether this libhdf5 can decode data written with the filter.
    public var isAvailable: Bool {
        switch self {
        case .deflate, .shuffle, .fletcher32: return true
        case .other(let id): return H5Zfilter_avail(H5Z_filter_t(id)) > 0
        }
    }
}

/// Reads one string, of variable or fixed length, through a caller-supplied read call.
enum HDF5StringReader {
    /// The longest string read: metadata strings are short, and a damaged file can declare
    /// gigabytes.
    static let maximumBytes = 1 << 20

    static func read(
        fileType: hid_t, file: String, object: String,
        _ readCall: (_ memoryType: hid_t, _ buffer: UnsafeMutableRawPointer) -> herr_t
    ) throws -> String {
        func tooLong(_ bytes: UInt64) -> HDF5Error {
            HDF5Error(
                operation: "read", file: file, objectPath: object,
                stack: ["the string declares \(bytes) bytes, more than the \(maximumBytes) a string may hold here; the file is corrupt or was forged"])
        }
        // Checked before any conversion: libhdf5 1.10 allocates (and, for variable-length
        // strings, can write past) what a damaged type declares.
        let declaredSize = H5Tget_size(fileType)
        guard declaredSize > 0, declaredSize <= maximumBytes else { throw tooLong(UInt64(declaredSize)) }
        let memoryType = try HDF5Call.handle(H5Tcopy(swift_H5T_C_S1()), "read", file: file, object: object)
        defer { HDF5Handle.close(memoryType, kind: .datatype) }
        try HDF5Call.check(H5Tset_cset(memoryType, H5Tget_cset(fileType)), "read", file: file, object: object)
        if H5Tis_variable_str(fileType) > 0 {
            // libhdf5 1.10 sizes its conversion buffers by the size of the string's character
            // type as stored, unchecked (h5py's newer libhdf5 rejects such files): read it from
            // the encoded type (2-byte header, 8-byte type header, then the base type's class
            // and bit fields and its 4-byte size) and refuse anything but a plain character.
            var length = 0
            if H5Tencode(fileType, nil, &length) >= 0, length >= 18, length <= 4096 {
                var encoded = [UInt8](repeating: 0, count: length)
                if H5Tencode(fileType, &encoded, &length) >= 0, encoded[2] & 0x0F == 9 {
                    let base = (14..<18).reduce(UInt64(0)) { $0 | UInt64(encoded[$1]) << (8 * UInt64($1 - 14)) }
                    guard (1...4).contains(base) else {
                        throw HDF5Error(
                            operation: "read", file: file, objectPath: object,
                            stack: ["the string's characters declare \(base) bytes each; the file is corrupt or was forged"])
                    }
                }
            }
            try HDF5Call.check(H5Tset_size(memoryType, swift_H5T_VARIABLE()), "read", file: file, object: object)
            var pointer: UnsafeMutablePointer<CChar>? = nil
            try HDF5Call.check(readCall(memoryType, &pointer), "read", file: file, object: object)
            guard let pointer else { return "" }
            defer { H5free_memory(pointer) }
            return String(cString: pointer)
        }
        let size = Int(declaredSize)
        try HDF5Call.check(H5Tset_size(memoryType, size + 1), "read", file: file, object: object)
        try HDF5Call.check(H5Tset_strpad(memoryType, H5T_STR_NULLTERM), "read", file: file, object: object)
        var bytes = [UInt8](repeating: 0, count: size + 1)
        let status = bytes.withUnsafeMutableBytes { raw in
            raw.baseAddress.map { readCall(memoryType, $0) } ?? -1
        }
        try HDF5Call.check(status, "read", file: file, object: object)
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}

extension HDF5Dataset {
    /// The most bytes one read may allocate: this machine's physical memory. A file can
    /// declare a dataset of 10¹² rows in a few kilobytes (its chunks unwritten); reading it
    /// whole is refused instead of aborting the process.
    nonisolated(unsafe) public static var readLimitBytes: Int = physicalMemoryBytes
}

/// The product of `dims`, or nil when it overflows an Int.
func checkedProduct(_ dims: [Int]) -> Int? {
    var result = 1
    for dimension in dims {
        let (value, overflow) = result.multipliedReportingOverflow(by: dimension)
        if overflow || dimension < 0 { return nil }
        result = value
    }
    return result
}
