/// The library's version, following semantic versioning (0.x: the API may still change between
/// minor versions). `d4rl-run --version` prints it.
public enum DecisionFlowVersion {
    /// The version string, `MAJOR.MINOR.PATCH`.
    public static let current = "0.2.0"
}
