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
        let path = try regularFilePath(givenPath)
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = temporaryPath(for: path, process: "\(getpid())")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            throw FileWriteError(
                file: path,
                problem:
                    "cannot create \(temporary) (\(String(cString: strerror(code)))); check that the directory exists and is writable",
                code: code)
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
                problem: "could not be written (\(String(cString: strerror(failure)))); the previous file, if any, is intact",
                code: failure)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileWriteError(
                file: path,
                problem: "could not be moved into place (\(String(cString: strerror(code)))); the previous file, if any, is intact",
                code: code)
        }
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
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
                    ? target : ((resolved as NSString).deletingLastPathComponent as NSString).appendingPathComponent(target)
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
