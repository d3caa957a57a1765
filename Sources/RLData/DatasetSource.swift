#if canImport(Glibc)
    import Glibc
#endif

/// Where a dataset named on a command line or in a preset lives: a D4RL HDF5 file, or a
/// Minari dataset folder.
///
/// A name resolves in this order:
/// 1. an existing file is a D4RL file;
/// 2. an existing folder is a Minari dataset: the dataset's own folder (`ID/`, holding
///    `data/`) or its `data/` folder (holding `metadata.json` and `main_data.hdf5`);
/// 3. any other name that does not end in `.hdf5` or `.h5` is tried as a Minari dataset id
///    (`mujoco/hopper/medium-v0`) under `$MINARI_DATASETS_PATH`, which defaults to
///    `~/.minari/datasets` as in the `minari` package;
/// 4. anything else is taken as a D4RL file, whose loader then says that it is missing.
public enum DatasetSource: Equatable, Sendable {
    /// A D4RL-schema HDF5 file.
    case d4rlFile(String)
    /// A Minari dataset: the `data/` folder that holds `metadata.json` and `main_data.hdf5`.
    case minari(dataFolder: String)

    /// Resolves a name as described above.
    ///
    /// - Throws: `D4RLError.unreadableFile` for a name that is neither a file, a folder nor a
    ///   Minari id found under the datasets root, naming the root that was searched.
    public static func resolve(_ name: String) throws -> DatasetSource {
        switch fileKind(name) {
        case .special:
            // A FIFO would block the reader (and then the file check's child) for ever.
            throw D4RLError(
                .unreadableFile, file: name, problem: "is not a regular file or folder (a FIFO, device or socket)",
                remedy: "Give the dataset's file or folder.")
        case .regular: return .d4rlFile(name)
        case .directory:
            let data = join(name, "data")
            if [.regular, .special].contains(fileKind(join(data, "metadata.json"))) { return .minari(dataFolder: data) }
            return .minari(dataFolder: name)  // the data folder itself, or a folder the reader will explain
        case .missing:
            let lowered = name.lowercased()
            if lowered.hasSuffix(".hdf5") || lowered.hasSuffix(".h5") { return .d4rlFile(name) }
            // An id names a dataset under the root, never a folder beside or above it.
            guard !name.hasPrefix("/"), !name.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                throw D4RLError(
                    .unreadableFile, file: name,
                    problem: "is not a file or folder, and as a Minari dataset id it would leave the datasets root \(minariRoot)",
                    remedy: "Give a dataset id such as mujoco/hopper/medium-v0, or the dataset's folder itself.")
            }
            let data = join(join(minariRoot, name), "data")
            if fileKind(data) == .directory { return .minari(dataFolder: data) }
            throw D4RLError(
                .unreadableFile, file: name,
                problem:
                    "is not a file, a folder or a Minari dataset id under \(minariRoot) (the datasets root: $MINARI_DATASETS_PATH, or ~/.minari/datasets)",
                remedy:
                    "Check the path; for a Minari dataset give its folder, or its id with MINARI_DATASETS_PATH set to the folder that holds it.")
        }
    }

    /// Whether `text` is a Minari dataset id (`mujoco/hopper/medium-v0`): a relative path of non-empty names, none `.` or `..`,
    /// which stays under the datasets root.
    public static func isMinariID(_ text: String) -> Bool {
        // No control characters either: an id is printed, and a forged one could write
        // escape sequences or fake lines to the terminal.
        !text.isEmpty && !text.hasPrefix("/") && !text.contains("\\")
            && !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
            && !text.split(separator: "/", omittingEmptySubsequences: false).contains {
                $0.allSatisfy(\.isWhitespace) || $0 == "." || $0 == ".."
            }
    }

    /// The HDF5 file that holds the steps.
    public var hdf5Path: String {
        switch self {
        case .d4rlFile(let path): return path
        case .minari(let data): return DatasetSource.join(data, "main_data.hdf5")
        }
    }

    /// The root that Minari dataset ids are resolved under: `$MINARI_DATASETS_PATH`, or
    /// `~/.minari/datasets`.
    public static var minariRoot: String {
        if let path = getenv("MINARI_DATASETS_PATH"), path.pointee != 0 { return String(cString: path) }
        let home = getenv("HOME").map { String(cString: $0) } ?? "."
        return join(join(home, ".minari"), "datasets")
    }

    static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : "\(folder)/\(name)"
    }

    enum FileKind { case regular, directory, special, missing }

    /// What is at `path`, following symbolic links: a FIFO, device or socket is `special`.
    static func fileKind(_ path: String) -> FileKind {
        var status = stat()
        guard stat(path, &status) == 0 else { return .missing }
        switch status.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .regular
        default: return .special
        }
    }
}
