import Foundation
import RLData
import RLEnvironments

/// How closely an environment reproduces a dataset's recorded transitions.
public struct ReplayReport: Codable, Sendable {
    /// The dataset that was replayed.
    public var file: String
    /// The environment it was replayed in.
    public var environment: String
    /// Transitions compared.
    public var transitions: Int
    /// Share of next observations whose largest component error is ≤ 1e-4.
    public var observationsWithin1e4: Double
    /// Share of next observations whose largest component error is ≤ 0.1.
    public var observationsWithin0_1: Double
    /// Transitions that end with no active contact, and the share of those within 1e-4.
    public var contactFreeTransitions: Int
    /// Of the transitions without ground contact, the fraction whose next observation agrees within 1e-4.
    public var contactFreeObservationsWithin1e4: Double
    /// Share of rewards within 1e-3 relative (|Δ| ≤ 1e-3·max(1, |recorded|)).
    public var rewardsWithin1e3Relative: Double
    /// Share of transitions whose termination flag agrees with `terminals`.
    public var terminalsAgree: Double
    /// Percentiles (50, 90, 99) of the largest observation error per transition.
    public var observationErrorPercentiles: [Double]
}

/// Replays a D4RL file's transitions in an environment: for every row, the simulator state is
/// set from `infos/qpos` and `infos/qvel` (the state before the step), the recorded action is
/// applied, and the result is compared with `next_observations`, `rewards` and `terminals`.
public enum DatasetReplay {
    /// Replays up to `limit` transitions (all by default).
    public static func run(file: String, environment: MuJoCoEnvironment, limit: Int? = nil) throws -> ReplayReport {
        let hdf5 = try HDF5File.open(file)
        for key in ["infos/qpos", "infos/qvel", "actions", "next_observations", "rewards", "terminals"]
        where !hdf5.contains(key) {
            throw D4RLError(
                .missingKey, file: file, key: key,
                problem: "is missing; replay needs the simulator state and the next observations",
                remedy:
                    "Use a file recorded with infos/qpos, infos/qvel and next_observations (D4RL v1/v2 files have them)."
            )
        }
        let qpos = try hdf5.dataset("infos/qpos")
        let qvel = try hdf5.dataset("infos/qvel")
        let count = min(limit ?? qpos.rowCount, qpos.rowCount)
        let positions = try qpos.readRows(0..<count, as: Double.self)
        let velocities = try qvel.readRows(0..<count, as: Double.self)
        let actionsData = try hdf5.dataset("actions")
        let actions = try actionsData.readRows(0..<count, as: Float.self)
        let nextObservations = try hdf5.dataset("next_observations").readRows(0..<count, as: Double.self)
        let rewards = try hdf5.dataset("rewards").readRows(0..<count, as: Double.self)
        let terminals = try hdf5.dataset("terminals").readBooleans()
        let nq = qpos.rowWidth
        let nv = qvel.rowWidth
        let A = actionsData.rowWidth
        let S = environment.observationSpace.dimension
        guard nq + nv == environment.state.count, A == environment.actionSpace.dimension else {
            throw D4RLError(
                .dimensionMismatch, file: file, key: "infos/qpos",
                problem:
                    "holds states of \(nq)+\(nv) values and actions of \(A), but \(environment.name) has \(environment.state.count) and \(environment.actionSpace.dimension)",
                remedy: "Replay the file in the environment it was recorded in.")
        }
        guard terminals.count >= count else {
            throw D4RLError(
                .lengthMismatch, file: file, key: "terminals",
                problem: "has \(terminals.count) rows but infos/qpos has \(count)",
                remedy: "Every per-step key must have one row per step; the file was written inconsistently or cut short.")
        }
        for (key, values, width) in [
            ("infos/qpos", positions, nq), ("infos/qvel", velocities, nv), ("next_observations", nextObservations, S),
        ] {
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw D4RLError(
                    .nonFinite, file: file, key: key,
                    problem: "row \(bad / max(width, 1)) holds \(values[bad]), not a finite number",
                    remedy: "Replay only the rows before it (--limit \(bad / max(width, 1))), or fix the recording.")
            }
        }
        _ = environment.reset(seed: 0)
        var errors: [Double] = []
        errors.reserveCapacity(count)
        var rewardHits = 0
        var terminalHits = 0
        var contactFree = 0
        var contactFreeHits = 0
        for row in 0..<count {
            try environment.setState(
                Array(positions[(row * nq)..<((row + 1) * nq)]) + Array(velocities[(row * nv)..<((row + 1) * nv)]))
            let result: StepResult
            do {
                result = try environment.step(action: Array(actions[(row * A)..<((row + 1) * A)]))
            } catch {
                throw D4RLError(
                    .nonFinite, file: file, key: "actions", problem: "row \(row): \(error)",
                    remedy: "Replay only the rows before it (--limit \(row)), or fix the recording.")
            }
            // A NaN error must count as the worst: `max` would drop it (max(x, .nan) is x).
            var worst = 0.0
            for j in 0..<S {
                let error = abs(Double(result.observation[j]) - nextObservations[row * S + j])
                if !(error <= worst) { worst = error.isFinite ? error : .infinity }
            }
            errors.append(worst)
            if abs(result.reward - rewards[row]) <= 1e-3 * max(1, abs(rewards[row])) { rewardHits += 1 }
            if result.terminated == terminals[row] { terminalHits += 1 }
            if environment.contactCount == 0 {
                contactFree += 1
                if worst <= 1e-4 { contactFreeHits += 1 }
            }
        }
        let sorted = errors.sorted()
        func share(_ hits: Int, of total: Int) -> Double { total == 0 ? 1 : Double(hits) / Double(total) }
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(p / 100 * Double(sorted.count)))]
        }
        return ReplayReport(
            file: file, environment: environment.name, transitions: count,
            observationsWithin1e4: share(errors.filter { $0 <= 1e-4 }.count, of: count),
            observationsWithin0_1: share(errors.filter { $0 <= 0.1 }.count, of: count),
            contactFreeTransitions: contactFree,
            contactFreeObservationsWithin1e4: share(contactFreeHits, of: contactFree),
            rewardsWithin1e3Relative: share(rewardHits, of: count), terminalsAgree: share(terminalHits, of: count),
            observationErrorPercentiles: [percentile(50), percentile(90), percentile(99)])
    }
}
