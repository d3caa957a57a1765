import DecisionFlowSupport
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `AtomicFile` replaces a file whole or not at all, and never replaces what is not a file.
@Suite struct AtomicFileTests {
    @Test func aWriteReplacesTheFileWhole() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("a.json")
        try AtomicFile.write(Data("old".utf8), to: path)
        try AtomicFile.write(Data("new".utf8), to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data("new".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) == ["a.json"])
    }

    /// A link is followed: its target gets the new contents and the link stays a link.
    @Test func aSymbolicLinkIsFollowedNotReplaced() throws {
        let scratch = try ScratchDirectory()
        let target = scratch.path("target.csv")
        let link = scratch.path("link.csv")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "target.csv")
        try AtomicFile.write(Data("cells".utf8), to: link)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "target.csv")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data("cells".utf8))
    }

    /// A FIFO stands for any special file (a device such as /dev/null, as root): renaming over
    /// it would destroy it, so the write is refused, naming the path, and it is left alone.
    @Test func aSpecialFileOrAFolderIsRefusedAndLeftAlone() throws {
        let scratch = try ScratchDirectory()
        let fifo = scratch.path("pipe")
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect {
            try AtomicFile.write(Data("x".utf8), to: fifo)
        } throws: { error in
            "\(error)".contains(fifo) && "\(error)".contains("not a regular file")
        }
        var status = stat()
        #expect(lstat(fifo, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO)
        #expect {
            try AtomicFile.write(Data("x".utf8), to: scratch.url.path)
        } throws: { error in
            (error as? FileWriteError)?.code == EISDIR
        }
    }

    /// A failure names the file, says the real cause, and keeps the system's error number.
    @Test func aMissingFolderIsNamedWithItsErrorNumber() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path("no/such/folder/a.json")
        #expect {
            try AtomicFile.write(Data("x".utf8), to: path)
        } throws: { error in
            guard let error = error as? FileWriteError else { return false }
            return error.file == path && error.code == ENOENT && error.problem.contains("does not exist; create it first")
        }
    }

    /// The path arithmetic a write needs, on the names Foundation's own traps on.
    @Test func pathsOfOneLetterAndEdgeCases() {
        #expect(FilePath.folder(of: "c") == ".")
        #expect(FilePath.folder(of: "x/") == ".")
        #expect(FilePath.folder(of: "/x") == "/")
        #expect(FilePath.folder(of: "a/b/c") == "a/b")
        #expect(FilePath.folder(of: "/a/b/") == "/a")
        #expect(FilePath.name(of: "a/b/c.svg") == "c.svg" && FilePath.name(of: "c") == "c" && FilePath.name(of: "x/") == "x")
        #expect(FilePath.join("a", "b") == "a/b" && FilePath.join("/", "b") == "/b")
    }
}
