import ArgumentParser
import Foundation
import RLData

/// Reads untrusted HDF5 files once in a child process before this process touches them.
///
/// Debian bookworm's libhdf5 (1.10.8) has memory-safety bugs on forged object headers: it can
/// crash inside `H5Oopen` on a file a few kilobytes long (fuzzing found such files; one is
/// kept in `Fuzz/Known/`). No check on our side can prevent a crash inside the library, so
/// every command that reads HDF5 files first has a child read each of them completely: its
/// keys, every numeric dataset and string, then the D4RL loader. If the child dies of a
/// signal, the command stops with a typed error naming the file instead of crashing; if it
/// exits normally, any problem the file has is reported by the ordinary checks that follow.
/// A child still reading after 30 s (plus a second per 10 MB) is killed: forged heaps can make
/// libhdf5 loop for ever (`Fuzz/Known/libhdf5-1.10.8-global-heap-loop.hdf5`).
enum FileProbe {
    /// Probes each of `files` in a child process.
    ///
    /// - Throws: `D4RLError.unreadableFile` naming the first file that crashed libhdf5.
    static func check(_ files: [String]) throws {
        for file in files {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            process.arguments = ["probe-hdf5", file]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // libhdf5 can also loop for ever on a forged heap; a complete read of a real file
            // takes about a second per 100 MB, so the child gets far more than it needs.
            let hdf5Path = (try? DatasetSource.resolve(file))?.hdf5Path ?? file
            let size = (try? FileManager.default.attributesOfItem(atPath: hdf5Path)[.size] as? Int) ?? 0
            let allowed = 30 + size / 10_000_000
            let deadline = Date().addingTimeInterval(Double(allowed))
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw D4RLError(
                    .unreadableFile, file: file,
                    problem:
                        "made libhdf5 loop: its structure could not be read in \(allowed) s; the file is corrupt or was forged",
                    remedy: "Do not use this file: download or write it again from a trusted source.")
            }
            if process.terminationReason == .uncaughtSignal {
                throw D4RLError(
                    .unreadableFile, file: file,
                    problem:
                        "crashed libhdf5 while its structure was being read (signal \(process.terminationStatus)); the file is corrupt or was forged",
                    remedy: "Do not use this file: download or write it again from a trusted source.")
            }
        }
    }

    /// What the child does: read everything any command may read (for a Minari dataset, its
    /// `main_data.hdf5`).
    static func readEverything(_ file: String) {
        let hdf5Path = (try? DatasetSource.resolve(file))?.hdf5Path ?? file
        if let hdf5 = try? HDF5File.open(hdf5Path), let entries = try? hdf5.entries() {
            for entry in entries where entry.kind == .dataset {
                guard let dataset = try? hdf5.dataset(entry.path) else { continue }
                if dataset.elementType.isNumeric {
                    _ = try? dataset.readArray(as: Double.self)
                } else {
                    _ = try? dataset.readString()
                }
            }
            for path in [""] + entries.map(\.path) {
                for name in (try? hdf5.attributeNames(of: path)) ?? [] {
                    guard let attribute = try? hdf5.attribute(name, of: path) else { continue }
                    _ = try? attribute.readString()
                    _ = try? attribute.readArray(as: Double.self)
                }
            }
        }
        _ = try? D4RLDataset(file: file, options: D4RLLoadOptions(loadNextObservations: true))
    }
}

/// `d4rl-run probe-hdf5 FILE`: the child side of `FileProbe` (hidden).
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe-hdf5", abstract: "Reads an HDF5 file completely (used internally).",
        shouldDisplay: false)

    @Argument var file: String

    func run() {
        FileProbe.readEverything(file)
    }
}
