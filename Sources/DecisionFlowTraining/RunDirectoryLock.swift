import DecisionFlowSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive `flock` on `DIR/.lock`, held while a process trains in DIR. The kernel
/// releases it when the process ends, however it ends, so a killed run never leaves the
/// directory locked.
final class RunDirectoryLock {
    let directory: RunDirectory
    private let descriptor: Int32

    /// Takes the lock.
    ///
    /// - Throws: `TrainingError.runDirectory` at once (no waiting) when another process holds it.
    init(_ directory: RunDirectory) throws {
        self.directory = directory
        descriptor = open(directory.lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            throw FileWriteError(
                file: directory.lockPath, problem: FileProblem.describe(code: code, writing: directory.lockPath), code: code)
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw TrainingError.runDirectory(
                path: directory.path,
                problem:
                    "is in use: another d4rl-run process is training in it. Wait for it to finish (then --resume), or choose another --out"
            )
        }
        // Record who holds it, for a person looking at the directory.
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// Deletes the temporary checkpoints (`checkpoint.safetensors.tmp-PID`) that a killed run
    /// left behind; under the lock no live process can be writing one. Returns a note per file.
    func removeStaleTemporaryFiles() -> [String] {
        directory.partialCheckpoints().compactMap { path in
            guard unlink(path) == 0 else { return nil }
            return "removed \(path), a partial checkpoint left by a run that was killed while writing"
        }
    }
}

extension RunDirectoryLock {
    /// Whether a process holds the lock of `directory` now (without taking it for long).
    static func isHeld(_ directory: RunDirectory) -> Bool {
        let descriptor = open(directory.lockPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { return true }
        flock(descriptor, LOCK_UN)
        return false
    }
}

extension RunDirectory {
    /// Whether a process is training in the directory now (holds its `.lock`).
    public var isLocked: Bool { RunDirectoryLock.isHeld(self) }
}
