import Foundation

/// Appends to files that grow a line at a time (logs), naming the file in any failure.
public enum AppendingFile {
    /// Appends `data` to the existing file at `path`.
    ///
    /// - Throws: `FileWriteError` naming `path` when it cannot be opened or written.
    public static func append(_ data: Data, to path: String) throws {
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw FileWriteError(
                file: path, problem: "cannot be opened for writing; check that it exists and its folder is writable")
        }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
            try handle.close()
        } catch {
            throw FileWriteError(file: path, problem: FileProblem.describe(error, writing: path))
        }
    }
}
