import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A file that could not be written, and what to do; the previous file under its name, if
/// any, is intact.
public struct FileWriteError: Error, CustomStringConvertible, Sendable {
    /// The file that was being written.
    public var file: String
    /// What went wrong, and what to do.
    public var problem: String
    /// The system's error number behind it (`ENOSPC`, `EACCES`, `ENOENT`, ...), when known:
    /// what tells a full disk from a missing folder.
    public var code: Int32?

    public var description: String { "\(file): \(problem)" }

    /// Creates an error; `code` is the system's error number, when there is one.
    public init(file: String, problem: String, code: Int32? = nil) {
        (self.file, self.problem, self.code) = (file, problem, code)
    }
}

/// A write refused because it would replace something the caller did not say to replace
/// (another model's export, a folder's source file); the message says how to allow it.
public struct RefusedOverwrite: Error, CustomStringConvertible, Sendable {
    /// The file or folder that would have been replaced.
    public var file: String
    /// Why, and what to do.
    public var problem: String

    public var description: String { "\(file): \(problem)" }

    /// Creates a refusal; see the properties for the meaning of each value.
    public init(file: String, problem: String) { (self.file, self.problem) = (file, problem) }
}

/// Whether two paths name the same file or folder (the same device and inode), whatever
/// their spelling or links; false when either does not exist.
public func isSameFile(_ a: String, _ b: String) -> Bool {
    var first = stat()
    var second = stat()
    guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
    return first.st_dev == second.st_dev && first.st_ino == second.st_ino
}

/// Writes files so that a crash or kill at any moment leaves either the old file or the new
/// one under the final name, never a partial file.
public enum AtomicFile {
    /// The temporary file beside `path` that process `process` writes before renaming it.
    public static func temporaryPath(for path: String, process: String) -> String { "\(path).tmp-\(process)" }

    /// Writes `data` to a temporary file beside `path`, flushes it to disk, then renames it
    /// over `path` (rename is atomic within a file system) and flushes the directory.
    ///
    /// A symbolic link at `path` is followed: its target is replaced, the link kept. Anything
    /// at `path` that is not a regular file (a directory, a device such as `/dev/null`, a
    /// FIFO) is refused rather than replaced.
    ///
    /// - Throws: `FileWriteError` naming `path`, when any step fails; the temporary file is
    ///   removed and the previous file under `path`, if any, is untouched.
    public static func write(_ data: Data, to givenPath: String) throws {
        try write([(data, givenPath)])
    }

    /// Writes several files as one: every file is written to its temporary file and flushed
    /// first, and only when all of them are complete are they renamed into place. A failure
    /// before that removes every temporary file and replaces nothing (a rename failing
    /// between two renames, within one directory, is the only way to get part of them).
    ///
    /// - Throws: `FileWriteError` naming the file that failed.
    public static func write(_ files: [(data: Data, path: String)]) throws {
        let paths = try files.map { try regularFilePath($0.path) }
        var written: [(temporary: String, path: String)] = []
        func discard() { for file in written { unlink(file.temporary) } }
        for (file, path) in zip(files, paths) {
            do {
                written.append((try writeTemporary(file.data, for: path), path))
            } catch {
                discard()
                throw error
            }
        }
        for (index, file) in written.enumerated() {
            guard rename(file.temporary, file.path) == 0 else {
                let code = errno
                for later in written[index...] { unlink(later.temporary) }
                let done = written[..<index].map(\.path)
                throw FileWriteError(
                    file: file.path,
                    problem:
                        "could not be moved into place (\(String(cString: strerror(code)))); the previous file, if any, is intact"
                        + (done.isEmpty ? "" : ", but \(done.joined(separator: ", ")) already hold the new contents"),
                    code: code)
            }
        }
        for directory in Set(written.map { FilePath.folder(of: $0.path) }) {
            let descriptor = open(directory, O_RDONLY)
            if descriptor >= 0 {
                _ = fsync(descriptor)
                close(descriptor)
            }
        }
    }

    /// Writes and flushes `data` to the temporary file beside `path`; returns its path.
    private static func writeTemporary(_ data: Data, for path: String) throws -> String {
        let temporary = temporaryPath(for: path, process: "\(getpid())")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            throw FileWriteError(file: path, problem: FileProblem.describe(code: code, writing: path), code: code)
        }
        var failure: Int32?
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = errno }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw FileWriteError(
                file: path,
                problem: FileProblem.describe(code: failure, writing: path) + "; the previous file, if any, is intact",
                code: failure)
        }
        return temporary
    }

    /// The file `write` replaces for `path`: the path itself, or the target of the symbolic
    /// links it names. Refuses a path that names something other than a regular file.
    static func regularFilePath(_ path: String) throws -> String {
        var resolved = path
        for _ in 0..<40 {  // the kernel's own limit on nested links
            var status = stat()
            guard lstat(resolved, &status) == 0 else { return resolved }  // nothing there yet
            switch status.st_mode & S_IFMT {
            case S_IFREG:
                return resolved
            case S_IFLNK:
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: resolved) else {
                    return resolved
                }
                resolved =
                    target.hasPrefix("/")
                    ? target : FilePath.folder(of: resolved) + "/" + target
            case S_IFDIR:
                throw FileWriteError(
                    file: path, problem: "is a directory; name a file (inside it, for example)", code: EISDIR)
            default:
                throw FileWriteError(
                    file: path,
                    problem:
                        "is not a regular file (a device, FIFO or socket), and writing it by replacing it would destroy it; name a regular file")
            }
        }
        throw FileWriteError(file: path, problem: "is a chain of too many symbolic links", code: ELOOP)
    }
}

/// Path arithmetic on strings, for the cases where Foundation's own traps: on this
/// toolchain `NSString.deletingLastPathComponent` crashes on a one-letter name (`"c"`,
/// `"x/"`), which a user may well pass as an output file.
public enum FilePath {
    /// The folder holding `path`: `"."` for a bare name, `"/"` for a file in the root.
    public static func folder(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// The last component of `path` (its name), without trailing slashes.
    public static func name(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/"), trimmed.count > 1 else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// `name` inside `folder`.
    public static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}

/// Refuses to write `output` over one of `inputs`, through a symbolic link, or over an
/// existing file unless `force`: what the user had is never lost by mistake. `choice` names
/// what the user would change (`-o`, `--onnx`) in the messages.
///
/// - Throws: `RefusedOverwrite` naming `output` and what to do.
public func refuseReplacing(_ output: String, inputs: [String], force: Bool, choice: String) throws {
    for input in inputs where isSameFile(output, input) {
        throw RefusedOverwrite(file: output, problem: "is an input of this command (\(input)); write the output elsewhere")
    }
    if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: output) {
        throw RefusedOverwrite(
            file: output,
            problem: "is a symbolic link (to \(target)); writing through it would replace a file elsewhere. Remove the link or choose another \(choice)")
    }
    if !force, FileManager.default.fileExists(atPath: output) {
        throw RefusedOverwrite(file: output, problem: "already exists; choose another \(choice), or pass --force to replace it")
    }
}
