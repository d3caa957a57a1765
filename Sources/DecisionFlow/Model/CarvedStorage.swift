/// Float buffers carved out of one zeroed allocation, each named beside its size.
///
/// `carve` is run twice: once to add the sizes up, then to hand out consecutive slices of the
/// allocation; a name and its size cannot drift apart. The owner keeps `storage` and
/// deallocates it.
struct CarvedStorage<Buffers> {
    let buffers: Buffers
    let storage: UnsafeMutablePointer<Float>

    init(_ carve: ((Int) -> UnsafeMutablePointer<Float>) -> Buffers) {
        var total = 0
        let placeholder = UnsafeMutablePointer<Float>(bitPattern: MemoryLayout<Float>.alignment)!
        _ = carve { count in
            total += count
            return placeholder
        }
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0, count: total)
        var cursor = storage
        buffers = carve { count in
            defer { cursor += count }
            return cursor
        }
    }
}
