import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Turns a failed file operation into a sentence a user can act on, instead of a raw
/// `NSCocoaErrorDomain` code: it looks at the path itself (missing, a directory, unreadable)
/// and at the system's own reason.
public enum FileProblem {
    /// Why `path` could not be read: "does not exist; check the path", "is a directory, ...".
    public static func describe(_ error: any Error, reading path: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return "does not exist; check the path"
        }
        if isDirectory.boolValue { return "is a directory, not a file; name a file inside it" }
        if !FileManager.default.isReadableFile(atPath: path) {
            return "cannot be read (permission denied); check its permissions"
        }
        return "cannot be read (\(reason(error))); check the path and the disk"
    }

    /// Why writing `path` failed, with what to do.
    public static func describe(_ error: any Error, writing path: String) -> String {
        "cannot be written (\(reason(error))); check free disk space and that the directory exists and is writable"
    }

    /// The system's reason behind `error`: the POSIX message when there is one.
    public static func reason(_ error: any Error) -> String {
        let error = error as NSError
        if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if let path = error.userInfo[NSFilePathErrorKey] as? String {
            return "the system refused \(path)"
        }
        return error.localizedFailureReason ?? error.localizedDescription
    }
}
