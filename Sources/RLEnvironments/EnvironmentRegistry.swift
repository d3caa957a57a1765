/// Environments by registry name: what `d4rl-run` looks up.
public enum EnvironmentRegistry {
    /// A factory per name. The MuJoCo tasks load their model file when made.
    nonisolated(unsafe) static var factories: [String: () throws -> any Environment] = [
        "pendulum": { Pendulum() },
        "mountaincar": { MountainCarContinuous() },
        "hopper": { try Hopper() },
        "walker2d": { try Walker2d() },
        "halfcheetah": { try HalfCheetah() },
        "ant": { try Ant() },
        "hopper-v5": { try Hopper(version: .v5) },
        "walker2d-v5": { try Walker2d(version: .v5) },
        "halfcheetah-v5": { try HalfCheetah(version: .v5) },
        "ant-v5": { try Ant(version: .v5) },
    ]

    /// The registered names, sorted.
    public static var names: [String] { factories.keys.sorted() }

    /// A new environment.
    ///
    /// - Throws: `EnvironmentError.unknownEnvironment` listing the known names, or the
    ///   environment's own error (for example a MuJoCo model that fails to load).
    public static func make(_ name: String) throws -> any Environment {
        let key = name.lowercased()
        guard let factory = factories[key] ?? factories[aliases[key] ?? ""] else {
            throw EnvironmentError.unknownEnvironment(name: name, known: names)
        }
        return try factory()
    }

    /// gymnasium ids that name a registered environment.
    static let aliases: [String: String] = [
        "pendulum-v1": "pendulum", "mountaincarcontinuous-v0": "mountaincar",
        "hopper-v3": "hopper", "hopper-v4": "hopper", "walker2d-v3": "walker2d", "walker2d-v4": "walker2d",
        "halfcheetah-v3": "halfcheetah", "halfcheetah-v4": "halfcheetah", "ant-v3": "ant", "ant-v4": "ant",
    ]
}
