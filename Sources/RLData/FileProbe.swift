import DecisionFlowSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reads untrusted HDF5 files once in a child process before this process opens them.
///
/// Debian bookworm's libhdf5 (1.10.8) has memory-safety bugs on forged object headers: it can
/// crash inside `H5Oopen` on a file a few kilobytes long (fuzzing found such files; one is
/// kept in `Fuzz/Known/`), and forged heaps can make it loop for ever. No check by a caller
/// can prevent that inside the library, so a program that opens files from strangers first
/// has a child read each of them completely: its keys, every numeric dataset, string and
/// attribute, then the D4RL loader. If the child dies of a signal, or is still reading after
/// the time the file's declared size allows (`allowedSeconds(for:)`), `check` throws a typed error naming the file instead of
/// letting this process crash or hang; if the child exits, the file's problems (if any) are
/// reported by the ordinary checks that follow.
///
/// The child is a program that calls `FileProbe.readEverything(_:)` on the file it is given
/// (its last argument) and exits 0:
/// the package's `decisionflow-probe` product (`FileProbe.besideThisProgram()` finds it when
/// it is built with yours), or your own executable with a subcommand of that kind (`d4rl-run`
/// probes with its hidden `probe-hdf5` command). `D4RLDataset` itself does not probe:
/// programs that read only their own files need not pay for a second process.
public struct FileProbe: Sendable {
    /// The program the child runs.
    public var executable: URL
    /// Arguments before the file's path.
    public var arguments: [String]

    /// A probe that runs `executable` with `arguments` and then the file's path.
    public init(executable: URL, arguments: [String] = []) {
        self.executable = executable
        self.arguments = arguments
    }

    /// The `decisionflow-probe` program in the folder of the running executable (where
    /// `swift build` puts every product of a package), or nil if it is not there.
    public static func besideThisProgram() -> FileProbe? {
        let folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let helper = folder.appendingPathComponent("decisionflow-probe")
        return FileManager.default.isExecutableFile(atPath: helper.path) ? FileProbe(executable: helper) : nil
    }

    /// Probes each of `files` (D4RL files, or Minari dataset folders or ids) in a child process.
    ///
    /// - Throws: `D4RLError.unreadableFile` naming the first file that crashed libhdf5 or
    ///   kept it reading past the time allowed, or that the child could not be started for;
    ///   a FIFO, device or socket is refused at once (reading it would block the child).
    public func check(_ files: [String]) throws {
        for file in files {
            // `resolve` refuses a FIFO, device or socket by name; a dataset folder may hold one
            // where its data file should be.
            if DatasetSource.fileKind(file) == .special { _ = try DatasetSource.resolve(file) }
            if let source = try? DatasetSource.resolve(file), DatasetSource.fileKind(source.hdf5Path) == .special {
                throw D4RLError(
                    .unreadableFile, file: file, key: FilePath.name(of: source.hdf5Path),
                    problem: "is not a regular file (a FIFO, device or socket)", remedy: "Give the dataset's file or folder.")
            }
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments + [file]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            do {
                try process.run()
            } catch {
                throw D4RLError(
                    .unreadableFile, file: file,
                    problem: "could not be checked: the probe \(executable.path) does not start (\(error.localizedDescription))",
                    remedy: "Build the decisionflow-probe product, or give FileProbe a program that runs FileProbe.readEverything.")
            }
            let allowed = Self.allowedSeconds(for: file)
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
            // The child exits 0 once it has read the file, whatever the file holds; anything
            // else means it never read it, and the file is not known to be safe.
            if process.terminationStatus != 0 {
                throw D4RLError(
                    .unreadableFile, file: file,
                    problem:
                        "could not be checked: the probe \(executable.path) exited with status \(process.terminationStatus) without reading it",
                    remedy: "Check the probe program (it must call FileProbe.readEverything on the path it is given, then exit 0).")
            }
        }
    }

    /// The seconds the child gets for `file`, from what the file declares: 30, plus one per
    /// 10 MB on disk (a complete read takes about a second per 100 MB), plus, for a Minari
    /// dataset, 2 ms per episode its metadata declares (each episode is several HDF5 objects;
    /// a valid dataset of 60,000 one-step episodes is large in objects, not in bytes).
    public static func allowedSeconds(for file: String) -> Int {
        let source = try? DatasetSource.resolve(file)
        let hdf5Path = source?.hdf5Path ?? file
        let size = (try? FileManager.default.attributesOfItem(atPath: hdf5Path)[.size] as? Int) ?? 0
        var episodes = 0
        if case .minari(let data)? = source,
            let text = try? MinariDatasetLayout.readText(
                DatasetSource.join(data, "metadata.json"), limit: MinariDatasetLayout.maximumMetadataBytes),
            let json = try? OrderedJSON.parse(text), let declared = json["total_episodes"]?.integerValue
        {
            episodes = min(declared, 100_000_000)
        }
        return 30 + size / 10_000_000 + episodes / 500
    }

    /// What the child does: read everything any reader here may read (for a Minari dataset,
    /// its `main_data.hdf5`). Errors are ignored: only a crash or a hang matters.
    public static func readEverything(_ file: String) {
        let source = try? DatasetSource.resolve(file)
        let hdf5Path = source?.hdf5Path ?? file
        // A Minari file is one group per episode, all alike. Readers list the keys of the first
        // (`inspect`) and read every episode's arrays (the loader, below), so that is what the
        // child reads; walking every object of 60,000 episodes would take minutes.
        if let hdf5 = try? HDF5File.open(hdf5Path) {
            let under = source.flatMap { try? D4RLFileReport.keysGroup(of: $0, in: hdf5) } ?? ""
            if let entries = try? hdf5.entries(under: under) {
                for entry in entries where entry.kind == .dataset {
                    guard let dataset = try? hdf5.dataset(entry.path) else { continue }
                    if dataset.elementType.isNumeric {
                        _ = try? dataset.readArray(as: Double.self)
                    } else {
                        _ = try? dataset.readString()
                    }
                }
                for path in Set(["", under]).sorted() + entries.map(\.path) {
                    for name in (try? hdf5.attributeNames(of: path)) ?? [] {
                        guard let attribute = try? hdf5.attribute(name, of: path) else { continue }
                        _ = try? attribute.readString()
                        _ = try? attribute.readArray(as: Double.self)
                    }
                }
            }
        }
        _ = try? D4RLDataset(file: file, options: D4RLLoadOptions(loadNextObservations: true))
    }
}
