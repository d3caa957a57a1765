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

    /// Why writing `path` failed, with what to do: the real cause when the path or the error
    /// shows it (a folder in the way, a file where a folder should be, a missing folder, a
    /// full or read-only disk, no permission), the system's reason otherwise.
    public static func describe(_ error: any Error, writing path: String) -> String {
        describe(code: code(error), reason: reason(error), writing: path)
    }

    /// Why writing `path` failed with system error `code` (nil when unknown; `reason` is then
    /// the system's words), with what to do.
    public static func describe(code: Int32?, reason: String? = nil, writing path: String) -> String {
        guard !path.isEmpty else { return "is an empty path; name a file or folder" }
        // A component of the path that exists but is not a folder.
        var ancestor = FilePath.folder(of: path)
        while ancestor != "." && ancestor != "/" {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: ancestor, isDirectory: &isDirectory) {
                if !isDirectory.boolValue {
                    return "cannot be created: \(ancestor) is a file, not a folder; choose another path"
                }
                break
            }
            ancestor = FilePath.folder(of: ancestor)
        }
        switch code {
        case ENOSPC, EDQUOT: return "cannot be written: the disk is full; free space and run again"
        case EROFS: return "cannot be written: the file system is read-only; choose a writable folder"
        case EACCES, EPERM: return "cannot be written: permission denied; check the folder's permissions"
        case EISDIR: return "is a folder; name a file (inside it, for example)"
        case ENOENT:
            let folder = FilePath.folder(of: path)
            // /proc and the like exist but take no new files.
            if FileManager.default.fileExists(atPath: folder) {
                return "cannot be created in \(folder), which exists but takes no new files there; choose another folder"
            }
            return "cannot be written: its folder \(folder) does not exist; create it first"
        case ENOTDIR: return "cannot be created: a part of the path is not a folder; check the path"
        default:
            let words = reason ?? code.map { String(cString: strerror($0)) } ?? "unknown cause"
            return "cannot be written (\(words)); check the path, the folder's permissions and free disk space"
        }
    }

    /// The POSIX error number behind `error`, when it has one (Foundation's own codes for
    /// a missing file, no permission, a full or read-only volume are mapped to theirs).
    public static func code(_ error: any Error) -> Int32? {
        if let error = error as? FileWriteError { return error.code }
        let error = error as NSError
        if error.domain == NSPOSIXErrorDomain { return Int32(error.code) }
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return Int32(underlying.code)
        }
        guard error.domain == NSCocoaErrorDomain else { return nil }
        switch CocoaError.Code(rawValue: error.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return ENOENT
        case .fileWriteNoPermission, .fileReadNoPermission: return EACCES
        case .fileWriteOutOfSpace: return ENOSPC
        case .fileWriteVolumeReadOnly: return EROFS
        default: return nil
        }
    }

    /// The system's reason behind `error`: the POSIX message when there is one.
    public static func reason(_ error: any Error) -> String {
        let error = error as NSError
        if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if let code = code(error) { return String(cString: strerror(code)) }
        return error.localizedFailureReason ?? error.localizedDescription
    }
}
