import DecisionFlow

/// The dropout stream of `rank`: rank 0 keeps the model's own stream (so one process trains
/// exactly as before), every other rank a stream derived from the seed and the rank, so the
/// ranks' dropout masks are independent.
func dropoutGenerator(seed: UInt64, rank: Int) -> RandomGenerator? {
    rank == 0 ? nil : RandomGenerator(seed: seed ^ (0x9E37_79B9_7F4A_7C15 &* UInt64(rank)) &+ 0xD0D0)
}
