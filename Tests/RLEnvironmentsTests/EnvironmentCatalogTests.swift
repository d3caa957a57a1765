import RLData
import RLEnvironments
import Testing

/// A user's environment, as an application would write one: a point that moves by its action.
private final class Drift: Environment {
    let name = "Drift-v0"
    let observationSpace = BoxSpace(lower: [-10, -10], upper: [10, 10])
    let actionSpace = BoxSpace(lower: [-1], upper: [1])
    let maxEpisodeSteps = 25
    private(set) var elapsedSteps = 0
    private var position: Float = 0
    var state: [Double] { [Double(position)] }

    func reset(seed: UInt64?) -> [Float] {
        elapsedSteps = 0
        position = Float(seed ?? 0)
        return [position, 0]
    }

    func step(action: Span<Float>, observation: inout MutableSpan<Float>) throws -> StepOutcome {
        try validate(action: action, observation: observation)
        position += action[0]
        elapsedSteps += 1
        observation[0] = position
        observation[1] = action[0]
        return StepOutcome(reward: -Double(abs(position)), terminated: false, truncated: elapsedSteps >= maxEpisodeSteps)
    }

    func setState(_ state: [Double]) throws { position = Float(state[0]) }
}

@Suite struct EnvironmentCatalogTests {
    /// The catalog's widths and time limits are what each environment really has: the entry is
    /// the one place they are written, and a made environment is checked against it.
    @Test func everyBuiltInEntryDescribesTheEnvironmentItMakes() throws {
        let entries = EnvironmentCatalog.standard.entries
        #expect(entries.count >= 10)
        for entry in entries {
            let environment = try entry.make()
            #expect(environment.name == entry.id, "\(entry.name)")
            #expect(environment.observationSpace.dimension == entry.observationWidth, "\(entry.name)")
            #expect(environment.reset(seed: 1).count == entry.observationWidth, "\(entry.name)")
            #expect(environment.actionSpace.dimension == entry.actionWidth, "\(entry.name)")
            #expect(environment.maxEpisodeSteps == entry.maxEpisodeSteps, "\(entry.name)")
        }
    }

    /// Names, ids, gym's v3 aliases, any case, D4RL dataset ids; versions stay apart.
    @Test func idsResolveToTheirVersion() throws {
        let catalog = EnvironmentCatalog.standard
        let expected: [String: String] = [
            "hopper": "hopper", "Hopper-v4": "hopper", "hopper-v3": "hopper", "HOPPER-V4": "hopper",
            "Hopper-v5": "hopper-v5", "hopper-v5": "hopper-v5", "half_cheetah": "halfcheetah",
            "HalfCheetah-v3": "halfcheetah", "Walker2d-v5": "walker2d-v5", "walker2d-medium-v2": "walker2d",
            "hopper-medium-expert-v2": "hopper", "halfcheetah-medium-replay-v0": "halfcheetah", "Ant-v3": "ant",
            "Ant-v5": "ant-v5", "Pendulum-v1": "pendulum", "MountainCarContinuous-v0": "mountaincar",
        ]
        for (id, name) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(try catalog.entry(id).name == name, "\(id)")
        }
        #expect(catalog.lookUp("Walker2d-v5")?.version == 5)
        #expect(catalog.lookUp("walker2d")?.version == 4)
        #expect(catalog.lookUp("walker2d")?.task == catalog.lookUp("walker2d-v5")?.task)
        #expect(catalog.lookUp("hopper")?.task != catalog.lookUp("walker2d")?.task)
        // Two-part ids are environment ids, not D4RL dataset ids: no loose match.
        #expect(catalog.lookUp("hopper-medium") == nil)
        #expect(catalog.lookUp("maze2d-umaze-v1") == nil)
        #expect(catalog.lookUp("hopper-v4-v4") == nil, "a version is not a dataset's name")
        #expect(catalog.lookUp("hopper")?.referenceScores == D4RLReferenceScores.published["hopper"])
        #expect(catalog.lookUp("ant-v5")?.referenceScores == D4RLReferenceScores.published["ant"])
        #expect(catalog.lookUp("walker2d-v5")?.defaultTargets == [5000, 2500])
        #expect(catalog.lookUp("ant")?.defaultTargets == [0])
    }

    @Test func unknownIdsGetCloseMatchesAndAmbiguousOnesTheirCandidates() {
        let catalog = EnvironmentCatalog.standard
        #expect {
            try catalog.entry("hoper")
        } throws: { error in
            guard case .unknownEnvironment(let name, let close, let known)? = error as? EnvironmentError else { return false }
            return name == "hoper" && close.first == "hopper (Hopper-v4)" && known.contains("pendulum (Pendulum-v1)")
                && "\(error)".contains("did you mean hopper (Hopper-v4)")
        }
        #expect {
            try catalog.entry("pong")
        } throws: { error in
            guard case .unknownEnvironment(_, let close, let known)? = error as? EnvironmentError else { return false }
            return close.isEmpty && known.count == catalog.entries.count
        }
        #expect {
            try catalog.entry("walker")
        } throws: { error in
            guard case .ambiguousEnvironment(let name, let matches)? = error as? EnvironmentError else { return false }
            return name == "walker" && matches == ["walker2d (Walker2d-v4)", "Walker2d-v5"]
        }
    }

    @Test func usersRegisterTheirOwnEnvironments() throws {
        let catalog = try EnvironmentCatalog(entries: EnvironmentCatalog.standard.entries)
        let entry = try catalog.register(
            id: "Drift-v0", aliases: ["drift"], referenceScores: D4RLReferenceScores(minimum: -100, maximum: 0),
            targets: [-5]
        ) { Drift() }
        #expect(entry.name == "Drift-v0" && entry.version == 0 && entry.task == "Drift")
        #expect(entry.observationWidth == 2 && entry.actionWidth == 1 && entry.maxEpisodeSteps == 25)
        #expect(try catalog.entry("drift").id == "Drift-v0")
        #expect(try catalog.make("DRIFT-V0").reset(seed: 3) == [3, 0])
        #expect(catalog.entries.count == EnvironmentCatalog.standard.entries.count + 1)
        // The standard catalog is another object: it did not change.
        #expect(EnvironmentCatalog.standard.lookUp("Drift-v0") == nil)
    }

    @Test func registrationRefusesClashesAndBadEntriesAndAddsNothing() throws {
        let catalog = try EnvironmentCatalog(entries: EnvironmentCatalog.standard.entries)
        let count = catalog.entries.count
        #expect(throws: EnvironmentError.alreadyRegistered(name: "HOPPER-v3", entry: "hopper (Hopper-v4)")) {
            try catalog.register(id: "Jumper-v1", aliases: ["HOPPER-v3"]) { Drift() }
        }
        #expect(throws: EnvironmentError.alreadyRegistered(name: "half_cheetah", entry: "halfcheetah (HalfCheetah-v4)")) {
            try catalog.register(id: "half_cheetah") { Drift() }
        }
        #expect {
            try catalog.register(
                EnvironmentEntry(id: "Flat-v0", observationWidth: 0, actionWidth: 1, maxEpisodeSteps: 10) { Drift() })
        } throws: { error in
            guard case .invalidEntry(let name, let problem)? = error as? EnvironmentError else { return false }
            return name == "Flat-v0" && problem.contains("widths must be positive")
        }
        #expect(throws: EnvironmentError.self) {
            try catalog.register(
                EnvironmentEntry(
                    id: "Endless-v0", observationWidth: 2, actionWidth: 1, maxEpisodeSteps: 10, targets: [.infinity]
                ) { Drift() })
        }
        #expect(catalog.entries.count == count)
        #expect(catalog.lookUp("Jumper-v1") == nil && catalog.lookUp("Flat-v0") == nil)
    }

    /// An entry whose factory makes something of other widths is caught when it is made.
    @Test func anEntryThatMisdescribesItsEnvironmentIsCaught() throws {
        let entry = EnvironmentEntry(id: "Liar-v0", observationWidth: 3, actionWidth: 1, maxEpisodeSteps: 25) { Drift() }
        #expect(
            throws: EnvironmentError.widthMismatch(
                environment: "Liar-v0", observationWidth: 3, actionWidth: 1,
                other: "the environment its factory made (Drift-v0)", otherObservationWidth: 2, otherActionWidth: 1)
        ) { try entry.make() }
    }

    @Test func widthChecksNameBothSides() throws {
        let ant = try EnvironmentCatalog.standard.entry("Ant-v5")
        try ant.checkWidths(observationWidth: 105, actionWidth: 8, of: "the data")
        #expect(throws: EnvironmentError.self) { try ant.checkWidths(observationWidth: 105, actionWidth: 3, of: "the model") }
        #expect {
            try ant.checkWidths(observationWidth: 111, actionWidth: 8, of: "the data (ant-medium.hdf5)")
        } throws: { error in
            "\(error)" == "Ant-v5 has observations of 105 and actions of 8, but the data (ant-medium.hdf5) has 111 and 8"
        }
    }
}
