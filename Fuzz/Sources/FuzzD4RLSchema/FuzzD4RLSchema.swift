// Feeds arbitrary bytes, as an in-memory HDF5 file image, to the D4RL loader: libhdf5's own
// parsing, then every schema and size check. Any input must load or end in a typed error.
import RLData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzD4RLSchema(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    // A small budget: a file image declaring more than this is refused, as a huge one is on disk.
    HDF5Dataset.readLimitBytes = 64 << 20
    let image = Array(UnsafeBufferPointer(start: bytes, count: count))
    do {
        let dataset = try D4RLDataset(fileImage: image, name: "fuzz.hdf5")
        // What was accepted must be internally consistent.
        let rows = dataset.trajectories.reduce(0) { $0 + $1.length }
        if rows != dataset.count { fatalError("trajectories cover \(rows) of \(dataset.count) rows") }
        if dataset.observations.count != dataset.count * dataset.observationDimension {
            fatalError("observations do not fill the rows")
        }
    } catch is D4RLError {
    } catch {
        fatalError("untyped error from D4RLDataset: \(error)")
    }
    return 0
}
