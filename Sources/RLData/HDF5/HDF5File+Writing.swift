import CHDF5

/// The element type to store a new dataset with. Files are always written little-endian.
public enum HDF5StorageType: Sendable, Equatable {
    /// IEEE single precision, little-endian.
    case float32
    /// IEEE double precision, little-endian.
    case float64
    /// Signed bytes.
    case int8
    /// Signed 64-bit integers, little-endian.
    case int64
    /// Unsigned bytes.
    case uint8
    /// h5py's boolean: an int8 enumeration with members FALSE = 0 and TRUE = 1.
    case bool

    /// Creates the file datatype; the caller owns (closes) the returned identifier.
    func makeFileType() -> hid_t {
        switch self {
        case .float32: return H5Tcopy(swift_H5T_IEEE_F32LE())
        case .float64: return H5Tcopy(swift_H5T_IEEE_F64LE())
        case .int8: return H5Tcopy(swift_H5T_STD_I8LE())
        case .int64: return H5Tcopy(swift_H5T_STD_I64LE())
        case .uint8: return H5Tcopy(swift_H5T_NATIVE_UINT8())
        case .bool: return HDF5StorageType.makeBooleanEnum(base: swift_H5T_STD_I8LE())
        }
    }

    /// An int8 enumeration FALSE/TRUE over `base`, the layout h5py and NumPy use for bool.
    static func makeBooleanEnum(base: hid_t) -> hid_t {
        let type = H5Tenum_create(base)
        guard type >= 0 else { return type }
        var no: Int8 = 0
        var yes: Int8 = 1
        guard H5Tenum_insert(type, "FALSE", &no) >= 0, H5Tenum_insert(type, "TRUE", &yes) >= 0 else {
            H5Tclose(type)
            return -1  // the caller reports HDF5's error stack
        }
        return type
    }

    /// A variable-length UTF-8 string type, as h5py writes `str` values; -1 on failure.
    static func makeUTF8String() -> hid_t {
        let type = H5Tcopy(swift_H5T_C_S1())
        guard type >= 0 else { return type }
        guard H5Tset_size(type, swift_H5T_VARIABLE()) >= 0, H5Tset_cset(type, H5T_CSET_UTF8) >= 0 else {
            H5Tclose(type)
            return -1  // the caller reports HDF5's error stack
        }
        return type
    }
}

/// How a new dataset is laid out on disk.
public struct HDF5DatasetLayout: Sendable, Equatable {
    /// Rows per chunk along the first dimension (all of every other dimension per chunk).
    public var chunkRows: Int
    /// gzip level 0-9, or nil for no compression.
    public var gzipLevel: Int?
    /// Whether bytes are shuffled before compression (helps floats compress).
    public var shuffle: Bool
    /// Whether the first dimension may grow later with `appendRows`.
    public var extendable: Bool
    /// Whether the values are stored in one block, unchunked and uncompressed, as h5py stores
    /// an array by default; the other properties are then ignored. For many small arrays (a
    /// Minari episode's): a chunked dataset carries a chunk index of about 2 KB however few
    /// rows it holds.
    public var isContiguous = false

    /// Chunked, shuffled and gzip-compressed at level 4, like D4RL's and h5py's files.
    public static let compressed = HDF5DatasetLayout(
        chunkRows: 8192, gzipLevel: 4, shuffle: true, extendable: false)

    /// One unchunked, uncompressed block of a fixed size (see `isContiguous`).
    public static let contiguous: HDF5DatasetLayout = {
        var layout = HDF5DatasetLayout(chunkRows: 1, gzipLevel: nil, shuffle: false, extendable: false)
        layout.isContiguous = true
        return layout
    }()

    /// Creates a layout; see the properties for the meaning of each value.
    public init(chunkRows: Int, gzipLevel: Int?, shuffle: Bool, extendable: Bool) {
        self.chunkRows = chunkRows
        self.gzipLevel = gzipLevel
        self.shuffle = shuffle
        self.extendable = extendable
    }
}

extension HDF5File {
    /// A link-creation property list that creates missing parent groups; caller closes it.
    private func makeIntermediateGroupsList(for objectPath: String) throws -> hid_t {
        let list = try HDF5Call.handle(
            H5Pcreate(swift_H5P_LINK_CREATE()), "create", file: path, object: objectPath)
        try HDF5Call.check(
            H5Pset_create_intermediate_group(list, 1), "create", file: path, object: objectPath)
        return list
    }

    private func requireWritable(_ objectPath: String) throws {
        guard isWritable else {
            throw HDF5Error(
                operation: "write", file: path, objectPath: objectPath,
                stack: ["the file was opened read-only"])
        }
    }

    /// Creates a group, and any missing parents.
    public func createGroup(_ objectPath: String) throws {
        HDF5Call.silence()
        try requireWritable(objectPath)
        let links = try makeIntermediateGroupsList(for: objectPath)
        defer { HDF5Handle.close(links, kind: .propertyList) }
        let group = try HDF5Call.handle(
            H5Gcreate2(handle.id, objectPath, links, swift_H5P_DEFAULT(), swift_H5P_DEFAULT()),
            "create group", file: path, object: objectPath)
        HDF5Handle.close(group, kind: .group)
    }

    /// Creates an empty dataset of the given shape (its first dimension may be 0 when
    /// `layout.extendable`), creating missing parent groups.
    public func createDataset(
        _ objectPath: String, type: HDF5StorageType, shape: [Int],
        layout: HDF5DatasetLayout = .compressed
    ) throws -> HDF5Dataset {
        HDF5Call.silence()
        try requireWritable(objectPath)
        precondition(!shape.isEmpty, "use writeScalar for scalar datasets")
        var dims = shape.map { hsize_t($0) }
        var maxDims = dims
        if layout.extendable { maxDims[0] = swift_H5S_UNLIMITED() }
        let space = try HDF5Call.handle(
            H5Screate_simple(Int32(dims.count), &dims, &maxDims), "create dataspace for", file: path,
            object: objectPath)
        defer { HDF5Handle.close(space, kind: .dataspace) }

        let creation = try HDF5Call.handle(
            H5Pcreate(swift_H5P_DATASET_CREATE()), "create", file: path, object: objectPath)
        defer { HDF5Handle.close(creation, kind: .propertyList) }
        if layout.isContiguous {
            precondition(!layout.extendable, "a contiguous dataset cannot grow; use a chunked layout")
            try HDF5Call.check(
                H5Pset_layout(creation, H5D_CONTIGUOUS), "set the layout of", file: path, object: objectPath)
        } else {
            var chunk = dims
            chunk[0] = hsize_t(max(1, layout.chunkRows))
            if !layout.extendable, shape[0] > 0 { chunk[0] = min(chunk[0], dims[0]) }
            try HDF5Call.check(
                H5Pset_chunk(creation, Int32(chunk.count), &chunk), "set chunking of", file: path,
                object: objectPath)
            if layout.shuffle {
                try HDF5Call.check(H5Pset_shuffle(creation), "set shuffle on", file: path, object: objectPath)
            }
            if let level = layout.gzipLevel {
                try HDF5Call.check(
                    H5Pset_deflate(creation, UInt32(level)), "set compression on", file: path,
                    object: objectPath)
            }
        }

        let fileType = try HDF5Call.handle(type.makeFileType(), "create type for", file: path, object: objectPath)
        defer { HDF5Handle.close(fileType, kind: .datatype) }
        let links = try makeIntermediateGroupsList(for: objectPath)
        defer { HDF5Handle.close(links, kind: .propertyList) }
        let dataset = try HDF5Call.handle(
            H5Dcreate2(handle.id, objectPath, fileType, space, links, creation, swift_H5P_DEFAULT()),
            "create dataset", file: path, object: objectPath)
        HDF5Handle.close(dataset, kind: .dataset)
        return try self.dataset(objectPath)
    }

    /// Creates a dataset holding `values` (row-major, `shape`) and writes them.
    @discardableResult
    public func write<T: HDF5Numeric>(
        _ values: [T], to objectPath: String, type: HDF5StorageType, shape: [Int],
        layout: HDF5DatasetLayout = .compressed
    ) throws -> HDF5Dataset {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        let dataset = try createDataset(objectPath, type: type, shape: shape, layout: layout)
        try values.withUnsafeBufferPointer { try dataset.writeRows(0..<shape[0], from: $0) }
        return dataset
    }

    /// Creates a boolean dataset (h5py's layout) holding `values`.
    @discardableResult
    public func write(
        _ values: [Bool], to objectPath: String, layout: HDF5DatasetLayout = .compressed
    ) throws -> HDF5Dataset {
        let dataset = try createDataset(objectPath, type: .bool, shape: [values.count], layout: layout)
        try dataset.writeBooleanRows(0..<values.count, from: values.map { $0 ? 1 : 0 })
        return dataset
    }

    /// Writes a scalar numeric dataset, as h5py does for `f["metadata/x"] = 3`.
    public func writeScalar<T: HDF5Numeric>(_ value: T, to objectPath: String, type: HDF5StorageType) throws {
        try writeScalarDataset(objectPath, fileType: type.makeFileType()) { dataset in
            withUnsafeBytes(of: value) { bytes in
                H5Dwrite(
                    dataset, T.hdf5MemoryType, swift_H5S_ALL(), swift_H5S_ALL(), swift_H5P_DEFAULT(),
                    bytes.baseAddress)
            }
        }
    }

    /// Writes a scalar variable-length UTF-8 string dataset, as h5py does for `str` values.
    public func writeString(_ value: String, to objectPath: String) throws {
        let type = HDF5StorageType.makeUTF8String()
        try writeScalarDataset(objectPath, fileType: type) { dataset in
            value.withCString { text in
                var pointer: UnsafePointer<CChar>? = text
                return H5Dwrite(dataset, type, swift_H5S_ALL(), swift_H5S_ALL(), swift_H5P_DEFAULT(), &pointer)
            }
        }
    }

    /// Creates a scalar dataset with `fileType` (taking ownership of it) and runs `write` on it.
    private func writeScalarDataset(
        _ objectPath: String, fileType: hid_t, write: (hid_t) -> herr_t
    ) throws {
        HDF5Call.silence()
        try requireWritable(objectPath)
        let type = try HDF5Call.handle(fileType, "create type for", file: path, object: objectPath)
        defer { HDF5Handle.close(type, kind: .datatype) }
        let space = try HDF5Call.handle(H5Screate(H5S_SCALAR), "create", file: path, object: objectPath)
        defer { HDF5Handle.close(space, kind: .dataspace) }
        let links = try makeIntermediateGroupsList(for: objectPath)
        defer { HDF5Handle.close(links, kind: .propertyList) }
        let dataset = try HDF5Call.handle(
            H5Dcreate2(handle.id, objectPath, type, space, links, swift_H5P_DEFAULT(), swift_H5P_DEFAULT()),
            "create dataset", file: path, object: objectPath)
        defer { HDF5Handle.close(dataset, kind: .dataset) }
        try HDF5Call.check(write(dataset), "write", file: path, object: objectPath)
    }

    /// Attaches a string attribute to an object (`""` is the root group).
    public func setAttribute(_ name: String, to value: String, on objectPath: String = "") throws {
        try writeScalarAttribute(name, on: objectPath, fileType: HDF5StorageType.makeUTF8String()) { attribute, type in
            value.withCString { text in
                var pointer: UnsafePointer<CChar>? = text
                return H5Awrite(attribute, type, &pointer)
            }
        }
    }

    /// Sets a scalar 64-bit integer attribute on an object (`""` is the root group), as h5py
    /// stores a Python `int` (Minari's episode `id` and `total_steps`).
    public func setAttribute(_ name: String, to value: Int64, on objectPath: String = "") throws {
        try writeScalarAttribute(name, on: objectPath, fileType: H5Tcopy(swift_H5T_STD_I64LE())) { attribute, _ in
            withUnsafeBytes(of: value) { H5Awrite(attribute, swift_H5T_NATIVE_INT64(), $0.baseAddress) }
        }
    }

    /// Sets a scalar 64-bit float attribute on an object (`""` is the root group), as h5py
    /// stores a Python `float`.
    public func setAttribute(_ name: String, to value: Double, on objectPath: String = "") throws {
        try writeScalarAttribute(name, on: objectPath, fileType: H5Tcopy(swift_H5T_IEEE_F64LE())) { attribute, _ in
            withUnsafeBytes(of: value) { H5Awrite(attribute, swift_H5T_NATIVE_DOUBLE(), $0.baseAddress) }
        }
    }

    /// Creates scalar attribute `name` of `fileType` (which it closes) and runs `write`.
    private func writeScalarAttribute(
        _ name: String, on objectPath: String, fileType: hid_t, write: (hid_t, hid_t) -> herr_t
    ) throws {
        HDF5Call.silence()
        try requireWritable(objectPath)
        let location = objectPath.isEmpty ? "/" : objectPath
        let type = try HDF5Call.handle(fileType, "create attribute", file: path, object: location)
        defer { HDF5Handle.close(type, kind: .datatype) }
        let space = try HDF5Call.handle(H5Screate(H5S_SCALAR), "create attribute", file: path, object: location)
        defer { HDF5Handle.close(space, kind: .dataspace) }
        let attribute = try HDF5Call.handle(
            H5Acreate_by_name(
                handle.id, location, name, type, space, swift_H5P_DEFAULT(), swift_H5P_DEFAULT(),
                swift_H5P_DEFAULT()),
            "create attribute", file: path, object: "\(location)@\(name)")
        defer { HDF5Handle.close(attribute, kind: .attribute) }
        try HDF5Call.check(write(attribute, type), "write attribute", file: path, object: "\(location)@\(name)")
    }
}

extension HDF5Dataset {
    /// Writes rows `rows` (which must lie inside the current shape) from `values`.
    public func writeRows<T: HDF5Numeric>(_ rows: Range<Int>, from values: UnsafeBufferPointer<T>) throws {
        precondition(values.count == rows.count * rowWidth, "values do not fill the rows")
        if elementType == .boolean {
            try writeBooleanRows(rows, from: values.map { $0 == 0 ? 0 : 1 })
            return
        }
        try writeSelected(rows, memoryType: T.hdf5MemoryType, from: UnsafeRawBufferPointer(values).baseAddress)
    }

    /// Writes 0/1 bytes into a boolean (enumeration) dataset.
    func writeBooleanRows(_ rows: Range<Int>, from bytes: [Int8]) throws {
        let memoryType = try HDF5Call.handle(
            HDF5StorageType.makeBooleanEnum(base: swift_H5T_NATIVE_INT8()), "write", file: file.path,
            object: path)
        defer { HDF5Handle.close(memoryType, kind: .datatype) }
        try bytes.withUnsafeBytes { try writeSelected(rows, memoryType: memoryType, from: $0.baseAddress) }
    }

    /// Grows the first dimension by `count` rows and writes `values` into them.
    public func appendRows<T: HDF5Numeric>(_ values: UnsafeBufferPointer<T>) throws {
        precondition(values.count % max(rowWidth, 1) == 0, "values are not whole rows")
        let count = values.count / max(rowWidth, 1)
        let start = rowCount
        try extend(toRows: start + count)
        try writeRows(start..<(start + count), from: values)
    }

    /// Grows the first dimension by `values.count` rows of booleans and writes them.
    public func appendBooleans(_ values: [Bool]) throws {
        let start = rowCount
        try extend(toRows: start + values.count)
        try writeBooleanRows(start..<(start + values.count), from: values.map { $0 ? 1 : 0 })
    }

    private func extend(toRows rows: Int) throws {
        HDF5Call.silence()
        var dims = shape.map { hsize_t($0) }
        dims[0] = hsize_t(rows)
        try HDF5Call.check(H5Dset_extent(handle.id, &dims), "extend", file: file.path, object: path)
        shape[0] = rows
    }

    private func writeSelected(_ rows: Range<Int>, memoryType: hid_t, from pointer: UnsafeRawPointer?) throws {
        HDF5Call.silence()
        precondition(rows.lowerBound >= 0 && rows.upperBound <= rowCount, "rows outside the dataset")
        if rows.isEmpty { return }
        try withRowSelection(rows, operation: "write") { memorySpace, fileSpace in
            try HDF5Call.check(
                H5Dwrite(handle.id, memoryType, memorySpace, fileSpace, swift_H5P_DEFAULT(), pointer),
                "write", file: file.path, object: path)
        }
    }
}
