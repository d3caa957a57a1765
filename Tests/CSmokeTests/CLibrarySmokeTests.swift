// Smoke tests of the system libraries through their raw C APIs, so that a broken install
// (a missing -dev package, a wrong pkg-config path) fails here first and obviously.
import CBLAS
import CHDF5
import Foundation
import Testing

@Suite struct CLibrarySmokeTests {
    @Test func hdf5RawWriteAndRead() throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("smoke-\(UUID().uuidString).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }

        let file = H5Fcreate(path, swift_H5F_ACC_TRUNC(), swift_H5P_DEFAULT(), swift_H5P_DEFAULT())
        #expect(file >= 0)
        var dims: [hsize_t] = [2, 3]
        let space = H5Screate_simple(2, &dims, nil)
        let dataset = H5Dcreate2(
            file, "values", swift_H5T_IEEE_F32LE(), space, swift_H5P_DEFAULT(), swift_H5P_DEFAULT(),
            swift_H5P_DEFAULT())
        #expect(dataset >= 0)
        let written: [Float] = [1, 2, 3, 4, 5, 6.5]
        #expect(
            H5Dwrite(dataset, swift_H5T_NATIVE_FLOAT(), swift_H5S_ALL(), swift_H5S_ALL(), swift_H5P_DEFAULT(), written)
                >= 0)
        #expect(H5Dclose(dataset) >= 0)
        #expect(H5Sclose(space) >= 0)
        #expect(H5Fclose(file) >= 0)

        let reopened = H5Fopen(path, swift_H5F_ACC_RDONLY(), swift_H5P_DEFAULT())
        #expect(reopened >= 0)
        let readBack = H5Dopen2(reopened, "values", swift_H5P_DEFAULT())
        var doubles = [Double](repeating: 0, count: 6)
        #expect(
            H5Dread(
                readBack, swift_H5T_NATIVE_DOUBLE(), swift_H5S_ALL(), swift_H5S_ALL(), swift_H5P_DEFAULT(), &doubles)
                >= 0)
        #expect(doubles == written.map { Double($0) })
        #expect(H5Dclose(readBack) >= 0)
        #expect(H5Fclose(reopened) >= 0)
    }

    @Test func openblasSgemm() {
        // C (2×2) = A (2×3) · B (3×2), row-major.
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        let b: [Float] = [7, 8, 9, 10, 11, 12]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, &c, 2)
        #expect(c == [58, 64, 139, 154])
    }
}
