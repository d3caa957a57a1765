/// FNV-1a, 64-bit: a fast checksum that catches truncation and bit flips (not an adversary).
public struct FNV1a64: Sendable {
    /// The hash of everything added so far.
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    /// Starts a hash at FNV-1a's offset basis.
    public init() {}

    /// Adds `bytes` to the hash, in order.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01B3
        }
    }

    /// The hash in lowercase hexadecimal, without leading zeros (as checkpoints store it).
    public var hex: String { String(value, radix: 16) }
}
