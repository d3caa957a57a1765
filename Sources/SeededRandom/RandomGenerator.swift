import RealModule

/// A small, fast, seeded generator (xoshiro256**), passed explicitly wherever randomness is
/// used (weight init, dropout, batch sampling), so a run is reproducible from its seed.
///
/// Its state is four words, saved in checkpoints so a resumed run continues the same stream.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable, Codable {
    /// Saved as four hexadecimal strings: JSON numbers lose precision past 2⁵³ in many readers.
    public init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        var words: [UInt64] = []
        while !container.isAtEnd {
            let text = try container.decode(String.self)
            guard let word = UInt64(text, radix: 16) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "'\(text)' is not a hexadecimal word")
            }
            words.append(word)
        }
        guard words.count == 4 else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "a generator state has 4 words, not \(words.count)")
        }
        (s0, s1, s2, s3) = (words[0], words[1], words[2], words[3])
    }

    /// Encodes the state as four hexadecimal strings.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        for word in [s0, s1, s2, s3] { try container.encode(String(word, radix: 16)) }
    }
    /// The generator's state; restore it to continue a stream exactly.
    public var state: (UInt64, UInt64, UInt64, UInt64) {
        get { (s0, s1, s2, s3) }
        set { (s0, s1, s2, s3) = newValue }
    }
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    public static func == (lhs: RandomGenerator, rhs: RandomGenerator) -> Bool { lhs.state == rhs.state }

    /// Seeds the state with SplitMix64, as the xoshiro authors recommend.
    public init(seed: UInt64) {
        var mixer = seed
        func mix() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            var z = mixer
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        (s0, s1, s2, s3) = (mix(), mix(), mix(), mix())
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in [0, 1), with 24 random bits (every Float in that grid is equally likely).
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1 / 16_777_216)
    }

    /// A standard normal sample (Box-Muller), for weight initialization.
    public mutating func nextGaussian() -> Float {
        let u1 = max(Double(next() >> 11) * (1 / 9_007_199_254_740_992), 1e-300)
        let u2 = Double(next() >> 11) * (1 / 9_007_199_254_740_992)
        return Float((-2 * Double.log(u1)).squareRoot() * Double.cos(2 * Double.pi * u2))
    }
}
