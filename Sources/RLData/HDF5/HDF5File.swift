import CHDF5

#if canImport(Glibc)
    import Glibc
#endif

/// An open HDF5 file.
///
/// The file stays open while this object or any dataset obtained from it is alive; the
/// last owner closes it. Reading is safe from several threads (Debian's libhdf5 is built
/// thread-safe and serialises calls internally).
public final class HDF5File {
    /// The path the file was opened or created at.
    public let path: String
    /// Whether the file was opened for writing.
    public let isWritable: Bool
    let handle: HDF5Handle

    private init(path: String, handle: HDF5Handle, isWritable: Bool) {
        self.path = path
        self.handle = handle
        self.isWritable = isWritable
    }

    /// Opens an existing file read-only.
    ///
    /// - Throws: `HDF5Error` when the file is missing, unreadable or not an HDF5 file.
    public static func open(_ path: String) throws -> HDF5File {
        HDF5Call.silence()
        guard access(path, F_OK) == 0 else {
            throw HDF5Error(
                operation: "open file", file: path, objectPath: nil,
                stack: ["no such file"])
        }
        // Read without taking libhdf5's file lock. The lock is an flock on the descriptor, which
        // a child process started meanwhile inherits: a file just written here while another
        // thread started a probe or a training run can stay locked until that child lets the
        // descriptor go, and opening it fails with "unable to lock file, errno = 11". Nothing
        // is lost without it: every writer here writes under a temporary name and renames when
        // done, so a reader never meets a file being written.
        let access = try HDF5Call.handle(H5Pcreate(swift_H5P_FILE_ACCESS()), "open file", file: path)
        defer { HDF5Handle.close(access, kind: .propertyList) }
        try HDF5Call.check(H5Pset_file_locking(access, false, true), "open file", file: path)
        let id = try HDF5Call.handle(H5Fopen(path, swift_H5F_ACC_RDONLY(), access), "open file", file: path)
        return HDF5File(path: path, handle: HDF5Handle(id, kind: .file), isWritable: false)
    }

    /// Opens an HDF5 file image held in memory, read-only (libhdf5 copies the bytes); `name`
    /// stands for the file in errors. For data that never touches a disk, and for fuzzing the
    /// readers without a file system.
    public static func open(image: [UInt8], name: String) throws -> HDF5File {
        HDF5Call.silence()
        let access = try HDF5Call.handle(
            H5Pcreate(swift_H5P_FILE_ACCESS()), "open file image", file: name)
        defer { HDF5Handle.close(access, kind: .propertyList) }
        try HDF5Call.check(H5Pset_fapl_core(access, 1 << 16, false), "open file image", file: name)
        try image.withUnsafeBytes { bytes in
            try HDF5Call.check(
                H5Pset_file_image(access, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count),
                "open file image", file: name)
        }
        let id = try HDF5Call.handle(H5Fopen(name, swift_H5F_ACC_RDONLY(), access), "open file image", file: name)
        return HDF5File(path: name, handle: HDF5Handle(id, kind: .file), isWritable: false)
    }

    /// Creates a new file, replacing any file at `path`.
    public static func create(_ path: String) throws -> HDF5File {
        HDF5Call.silence()
        let id = try HDF5Call.handle(
            H5Fcreate(path, swift_H5F_ACC_TRUNC(), swift_H5P_DEFAULT(), swift_H5P_DEFAULT()),
            "create file", file: path)
        return HDF5File(path: path, handle: HDF5Handle(id, kind: .file), isWritable: true)
    }

    /// Flushes buffered data to disk. Closing happens when the last owner goes away.
    public func flush() throws {
        HDF5Call.silence()
        try HDF5Call.check(H5Fflush(handle.id, H5F_SCOPE_LOCAL), "flush file", file: path)
    }

    // MARK: - Navigation

    /// Whether an object (group or dataset) exists at `objectPath`, e.g. `infos/qpos`.
    ///
    /// Each intermediate group is checked in turn, so a missing parent answers `false`
    /// instead of raising an HDF5 error.
    public func contains(_ objectPath: String) -> Bool {
        HDF5Call.silence()
        var prefix = ""
        for component in objectPath.split(separator: "/") {
            prefix += prefix.isEmpty ? String(component) : "/\(component)"
            if H5Lexists(handle.id, prefix, swift_H5P_DEFAULT()) <= 0 {
                _ = H5Eclear2(swift_H5E_DEFAULT())
                return false
            }
        }
        return true
    }

    /// What kind of object lives at `objectPath`, or nil when there is none.
    public func kind(of objectPath: String) -> HDF5Entry.Kind? {
        guard contains(objectPath) else { return nil }
        let object = H5Oopen(handle.id, objectPath, swift_H5P_DEFAULT())
        guard object >= 0 else {
            _ = H5Eclear2(swift_H5E_DEFAULT())
            return nil
        }
        defer { HDF5Handle.close(object, kind: .object) }
        switch H5Iget_type(object) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return nil
        }
    }

    /// Every group and dataset below `groupPath` (`""`, the default, is the whole file),
    /// depth first, in HDF5's name order. Paths are from the root.
    public func entries(under groupPath: String = "") throws -> [HDF5Entry] {
        var result: [HDF5Entry] = []
        try collectEntries(in: groupPath, into: &result)
        return result
    }

    /// The deepest nesting and the most objects a walk visits. Groups can be hard-linked into
    /// themselves, so a file can describe an endless tree in a few bytes; no real dataset file
    /// comes near these.
    static let maximumDepth = 32
    static let maximumEntries = 100_000

    private func collectEntries(in groupPath: String, into result: inout [HDF5Entry], depth: Int = 0) throws {
        guard depth < Self.maximumDepth else {
            throw HDF5Error(
                operation: "list", file: path, objectPath: groupPath,
                stack: ["groups nest more than \(Self.maximumDepth) deep (a group linked into itself?); the file is corrupt or was forged"])
        }
        for name in try memberNames(of: groupPath) {
            guard result.count < Self.maximumEntries else {
                throw HDF5Error(
                    operation: "list", file: path, objectPath: groupPath,
                    stack: ["the file holds more than \(Self.maximumEntries) objects; the file is corrupt or was forged"])
            }
            let childPath = groupPath.isEmpty ? name : "\(groupPath)/\(name)"
            switch kind(of: childPath) {
            case .group:
                result.append(HDF5Entry(path: childPath, kind: .group))
                try collectEntries(in: childPath, into: &result, depth: depth + 1)
            case .dataset:
                result.append(HDF5Entry(path: childPath, kind: .dataset))
            case nil:
                continue  // named datatypes and dangling links are not data
            }
        }
    }

    /// The names of the direct members of a group (`""` is the root group).
    public func memberNames(of groupPath: String) throws -> [String] { try names(.members, of: groupPath) }

    /// Opens the dataset at `objectPath`.
    public func dataset(_ objectPath: String) throws -> HDF5Dataset {
        try HDF5Dataset(file: self, path: objectPath)
    }

    // MARK: - Attributes

    /// The names of the attributes attached to an object (`""` is the root group).
    public func attributeNames(of objectPath: String) throws -> [String] { try names(.attributes, of: objectPath) }

    /// What `names(_:of:)` lists.
    private enum Names { case members, attributes }

    /// Opens the object at `objectPath` (a group for its members) and collects the names of
    /// its members or attributes, in name order.
    private func names(_ names: Names, of objectPath: String) throws -> [String] {
        HDF5Call.silence()
        let location = objectPath.isEmpty ? "/" : objectPath
        let kind: HDF5Handle.Kind = names == .members ? .group : .object
        let object = try HDF5Call.handle(
            names == .members ? H5Gopen2(handle.id, location, swift_H5P_DEFAULT()) : H5Oopen(handle.id, location, swift_H5P_DEFAULT()),
            kind == .group ? "open group" : "open object", file: path, object: location)
        defer { HDF5Handle.close(object, kind: kind) }
        let operation = names == .members ? "list group" : "list attributes"
        return try NameCollector.collect(operation, file: path, object: location) { context in
            var index: hsize_t = 0
            switch names {
            case .members:
                return H5Literate(
                    object, H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, context in NameCollector.add(name, to: context) },
                    context)
            case .attributes:
                return H5Aiterate2(
                    object, H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, context in NameCollector.add(name, to: context) },
                    context)
            }
        }
    }

    /// Opens attribute `name` of the object at `objectPath` (`""` is the root group).
    public func attribute(_ name: String, of objectPath: String) throws -> HDF5Attribute {
        try HDF5Attribute(file: self, objectPath: objectPath, name: name)
    }
}

/// Gathers the names an HDF5 iteration reports through its C callback's context pointer.
private final class NameCollector {
    var names: [String] = []

    /// Runs `iterate` with a context pointer for `add(_:to:)`, checks its status, returns the names.
    static func collect(
        _ operation: String, file: String, object: String, _ iterate: (UnsafeMutableRawPointer) -> herr_t
    ) throws -> [String] {
        let collector = NameCollector()
        let box = Unmanaged.passRetained(collector)
        defer { box.release() }
        try HDF5Call.check(iterate(box.toOpaque()), operation, file: file, object: object)
        return collector.names
    }

    /// The body of every iteration callback: records `name`, continues the iteration.
    static func add(_ name: UnsafePointer<CChar>?, to context: UnsafeMutableRawPointer?) -> herr_t {
        guard let name, let context else { return 0 }
        Unmanaged<NameCollector>.fromOpaque(context).takeUnretainedValue().names.append(String(cString: name))
        return 0
    }
}

/// One group or dataset found while listing a file.
public struct HDF5Entry: Equatable, Sendable {
    /// Whether an entry is a group or a dataset.
    public enum Kind: Equatable, Sendable {
        /// A group: a folder of further groups and datasets.
        case group
        /// A dataset: an array of values.
        case dataset
    }
    /// The path from the root, without a leading slash, e.g. `infos/qpos`.
    public var path: String
    /// Group or dataset.
    public var kind: Kind

    /// Creates an entry; see the properties for the meaning of each value.
    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }
}
