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

    public var description: String { "\(file): \(problem)" }

    /// Creates an error; see the properties for the meaning of each value.
    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
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
    /// - Throws: `FileWriteError` naming `path`, when any step fails; the temporary file is
    ///   removed and the previous file under `path`, if any, is untouched.
    public static func write(_ data: Data, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = temporaryPath(for: path, process: "\(getpid())")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            throw FileWriteError(
                file: path,
                problem:
                    "cannot create \(temporary) (\(String(cString: strerror(errno)))); check that the directory exists and is writable"
            )
        }
        var failure: String?
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw FileWriteError(
                file: path, problem: "could not be written (\(failure)); the previous file, if any, is intact")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw FileWriteError(
                file: path, problem: "could not be moved into place (\(reason)); the previous file, if any, is intact")
        }
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}
