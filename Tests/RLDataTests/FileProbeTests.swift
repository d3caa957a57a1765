import Foundation
import RLData
import Testing

/// `FileProbe` for library users: the `decisionflow-probe` product reads a file in a child
/// process, so a file that crashes libhdf5 is refused with a typed error instead of taking
/// the caller down.
@Suite struct FileProbeTests {
    static let probe = FileProbe.besideThisProgram()

    @Test func theHelperIsBuiltBesideThePackagesPrograms() throws {
        let probe = try #require(Self.probe, "decisionflow-probe is not beside the test runner")
        #expect(probe.executable.lastPathComponent == "decisionflow-probe")
    }

    @Test func aFileThatCrashesLibhdf5IsRefusedNamingIt() throws {
        let probe = try #require(Self.probe)
        let forged = TestFiles.packageRoot.appendingPathComponent(
            "Fuzz/Known/libhdf5-1.10.8-object-header-out-of-bounds.hdf5").path
        do {
            try probe.check([forged])
            Issue.record("a file that crashes libhdf5 passed the probe")
        } catch let error as D4RLError {
            #expect(error.kind == .unreadableFile && error.file == forged, "\(error)")
            #expect(error.problem.contains("crashed libhdf5"), "\(error)")
        }
    }

    @Test func goodFilesPassAndAMissingProgramIsNamed() throws {
        let probe = try #require(Self.probe)
        try probe.check([TestFiles.sharedDataset("hopper-medium"), TestFiles.packageRoot.appendingPathComponent("data/hopper-medium-replay-tail25k.hdf5").path])
        let missing = FileProbe(executable: URL(fileURLWithPath: "/nonexistent/decisionflow-probe"))
        do {
            try missing.check([TestFiles.sharedDataset("hopper-medium")])
            Issue.record("a probe that cannot start passed")
        } catch let error as D4RLError {
            #expect(error.problem.contains("/nonexistent/decisionflow-probe"), "\(error)")
        }
    }
}
