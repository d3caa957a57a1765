import CHDF5

/// An open attribute of a group or dataset: small metadata stored beside the object.
public final class HDF5Attribute {
    /// The file the attribute belongs to.
    public let file: HDF5File
    /// The object the attribute is attached to (`""` is the root group).
    public let objectPath: String
    /// The attribute's name.
    public let name: String
    /// The dimensions; empty for a scalar attribute.
    public let shape: [Int]
    /// The stored element type.
    public let elementType: HDF5ElementType

    let handle: HDF5Handle
    let fileType: HDF5Handle

    init(file: HDF5File, objectPath: String, name: String) throws {
        HDF5Call.silence()
        self.file = file
        self.objectPath = objectPath
        self.name = name
        let location = objectPath.isEmpty ? "/" : objectPath
        let label = "\(location)@\(name)"
        let id = try HDF5Call.handle(
            H5Aopen_by_name(file.handle.id, location, name, swift_H5P_DEFAULT(), swift_H5P_DEFAULT()),
            "open attribute", file: file.path, object: label)
        handle = HDF5Handle(id, kind: .attribute)
        fileType = HDF5Handle(
            try HDF5Call.handle(H5Aget_type(id), "read the type of", file: file.path, object: label),
            kind: .datatype)
        elementType = HDF5ElementType.classify(fileType.id)
        let space = try HDF5Call.handle(
            H5Aget_space(id), "read the shape of", file: file.path, object: label)
        defer { HDF5Handle.close(space, kind: .dataspace) }
        let rank = Int(max(H5Sget_simple_extent_ndims(space), 0))
        var dims = [hsize_t](repeating: 0, count: rank)
        if rank > 0 {
            try HDF5Call.check(
                H5Sget_simple_extent_dims(space, &dims, nil), "read the shape of", file: file.path, object: label)
        }
        shape = dims.map { Int($0) }
    }

    private var label: String { "\(objectPath.isEmpty ? "/" : objectPath)@\(name)" }

    /// Reads all values, converted to `T`.
    public func readArray<T: HDF5Numeric>(as type: T.Type = T.self) throws -> [T] {
        HDF5Call.silence()
        switch elementType {
        case .float, .integer:
            return try readConverted()
        default:
            throw HDF5Error(
                operation: "read numbers from attribute", file: file.path, objectPath: label,
                stack: ["the attribute holds \(elementType), not plain numbers"])
        }
    }

    private func readConverted<T: HDF5Numeric>() throws -> [T] {
        let count = shape.reduce(1, *)
        var values = [T](repeating: 0, count: count)
        try values.withUnsafeMutableBytes { raw in
            try HDF5Call.check(
                H5Aread(handle.id, T.hdf5MemoryType, raw.baseAddress), "read attribute",
                file: file.path, object: label)
        }
        return values
    }

    /// Reads a string attribute (variable or fixed length).
    public func readString() throws -> String {
        HDF5Call.silence()
        guard case .string = elementType, shape.reduce(1, *) == 1 else {
            throw HDF5Error(
                operation: "read a string from attribute", file: file.path, objectPath: label,
                stack: ["the attribute holds \(elementType) of shape \(shape), not one string"])
        }
        return try HDF5StringReader.read(fileType: fileType.id, file: file.path, object: label) {
            memoryType, buffer in H5Aread(handle.id, memoryType, buffer)
        }
    }
}
