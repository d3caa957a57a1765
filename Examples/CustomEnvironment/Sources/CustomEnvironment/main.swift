// Offline RL in a Swift simulator of your own, from recording to evaluation, in one page:
//
//   1. `PointMass` conforms to `Environment`, and joins the environment catalog as
//      `PointMass-v0`, so that everything below finds it by that id;
//   2. a noisy scripted controller plays it, and `MinariDatasetWriter` records the episodes
//      as a Minari dataset naming `PointMass-v0` (Python's `minari.load_dataset` reads it too);
//   3. `TrainingRun` trains a Decision-Flowformer on that dataset for 50 steps; the
//      checkpoint records the environment the data named;
//   4. the evaluation protocol (`ReferenceEvaluation`) finds `PointMass-v0` through the
//      checkpoint and the catalog and runs the policy in 10 fresh episodes;
//   5. `DecisionPolicy.withEnvironment` gives the policy and the entry to make a simulator
//      from, as an application embedding the policy would get them.
//
// Run it with `swift run -c release` in this folder; the files go to a temporary folder.
import DecisionFlow
import DecisionFlowCheckpoints
import DecisionFlowEvaluation
import DecisionFlowTraining
import Foundation
import RLData
import RLEnvironments

/// A point mass on a line that must reach the origin and stay there. Observation: position
/// and velocity; action: a force in [-1, 1]; reward: minus the distance to the origin. The
/// episode ends early (terminated) when the mass leaves [-4, 4], and is truncated after 60 steps.
final class PointMass: Environment {
    let name = "PointMass-v0"
    let observationSpace = BoxSpace(lower: [-4, -.infinity], upper: [4, .infinity])
    let actionSpace = BoxSpace(dimension: 1, bound: 1)
    let maxEpisodeSteps = 60
    private(set) var elapsedSteps = 0
    private var position = 0.0
    private var velocity = 0.0
    private var random = SystemRandomNumberGenerator()
    private var seeded: UInt64 = 0

    /// A tiny deterministic stream from the reset seed (SplitMix64), so episodes repeat.
    private func uniform() -> Double {
        seeded &+= 0x9E37_79B9_7F4A_7C15
        var z = seeded
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    func reset(seed: UInt64?) -> [Float] {
        seeded = seed ?? random.next()
        position = uniform() * 4 - 2
        velocity = 0
        elapsedSteps = 0
        return [Float(position), Float(velocity)]
    }

    /// One step, written into the caller's observation span: nothing is allocated.
    /// (`step(action: [Float])`, which returns a new array, comes with the protocol.)
    func step(action: Span<Float>, observation: inout MutableSpan<Float>) throws -> StepOutcome {
        // The library's check of the action's width and values and the observation's width.
        try validate(action: action, observation: observation)
        let force = Double(min(max(action[0], -1), 1))
        velocity = 0.9 * velocity + 0.1 * force
        position += velocity
        elapsedSteps += 1
        let terminated = abs(position) > 4
        observation[0] = Float(position)
        observation[1] = Float(velocity)
        return StepOutcome(
            reward: -abs(position), terminated: terminated, truncated: !terminated && elapsedSteps >= maxEpisodeSteps)
    }

    var state: [Double] { [position, velocity] }

    func setState(_ state: [Double]) throws {
        guard state.count == 2, state.allSatisfy(\.isFinite) else {
            throw EnvironmentError.badState(environment: name, problem: "needs two finite values")
        }
        position = state[0]
        velocity = state[1]
    }
}

/// The mean return of `episodes` episodes of `act` from seeds 1000, 1001, ...
func meanReturn(episodes: Int, _ act: ([Float], Int) -> [Float]) throws -> Double {
    var total = 0.0
    for episode in 0..<episodes {
        let environment = PointMass()
        var observation = environment.reset(seed: 1000 + UInt64(episode))
        while true {
            let step = try environment.step(action: act(observation, episode))
            total += step.reward
            if step.isDone { break }
            observation = step.observation
        }
    }
    return total / Double(episodes)
}

// 1. Join the catalog: widths and the time limit are read from one instance.
try EnvironmentCatalog.standard.register(id: "PointMass-v0", aliases: ["point-mass"]) { PointMass() }

let folder = FileManager.default.temporaryDirectory.appendingPathComponent("custom-environment-\(getpid())").path
defer { try? FileManager.default.removeItem(atPath: folder) }

// 2. Record 80 episodes of a proportional controller with noise of several strengths.
let datasetFolder = "\(folder)/point-mass/noisy-controller-v0"
let writer = try MinariDatasetWriter(
    folder: datasetFolder,
    configuration: .init(
        observationDimension: 2, actionDimension: 1, datasetID: "point-mass/noisy-controller-v0",
        environmentID: "PointMass-v0",
        algorithmName: "proportional controller with Gaussian noise"))
var noise = SystemRandomNumberGenerator()
for episode in 0..<80 {
    let environment = PointMass()
    var observation = environment.reset(seed: UInt64(episode))
    let strength = Float(episode % 4) * 0.5
    while true {
        let gaussian = Float.random(in: -1...1, using: &noise) + Float.random(in: -1...1, using: &noise)
        let action = [min(max(-observation[0] - 3 * observation[1] + strength * gaussian, -1), 1)]
        let step = try environment.step(action: action)
        try writer.append(
            observation: observation, action: action, reward: Float(step.reward), terminal: step.terminated,
            timeout: step.truncated, nextObservation: step.observation)
        if step.isDone { break }
        observation = step.observation
    }
}
try writer.finish()
let dataset = try D4RLDataset(file: datasetFolder)
let best = dataset.trajectories.map(\.totalReward).max() ?? 0
print("recorded \(dataset.trajectories.count) episodes, \(dataset.count) steps; returns \(String(format: "%.1f", dataset.returnStatistics.mean)) on average, \(String(format: "%.1f", best)) at best")

// 3. Train 50 steps.
var configuration = TrainingConfiguration()
configuration.datasets = [datasetFolder]
configuration.contextLength = 10
configuration.embeddingDimension = 32
configuration.layerCount = 2
configuration.headCount = 2
configuration.batchSize = 32
configuration.maxEpisodeLength = 60
configuration.rewardScale = 10
configuration.learningRate = 1e-3
configuration.warmupSteps = 10
configuration.steps = 50
configuration.logEvery = 10
configuration.checkpointEvery = 50
let run = try TrainingRun.start(configuration: configuration, dataset: dataset, directory: "\(folder)/run")
let records = try run.run()
print("trained 50 steps: loss \(String(format: "%.4f", records.first?.loss ?? .nan)) -> \(String(format: "%.4f", records.last?.loss ?? .nan))")

// 4. Evaluate the policy in 10 fresh episodes, aiming at the best recorded return: the
// checkpoint names PointMass-v0, and the catalog makes the episodes' environments.
let checkpoint = try Checkpoint.read(run.directory.checkpointPath)
let (evaluated, reports) = try ReferenceEvaluation.evaluate(
    checkpoint: checkpoint, source: run.directory.checkpointPath, targets: [best], episodes: 10, seed: 1000)
let policyReturn = reports[0].returnMean
let idleReturn = try meanReturn(episodes: 10) { _, _ in [0] }
print("policy in \(evaluated): mean return \(String(format: "%.1f", policyReturn)) over \(reports[0].episodeCount) episodes (doing nothing: \(String(format: "%.1f", idleReturn)))")
guard evaluated == "PointMass-v0", reports[0].episodeCount == 10, policyReturn.isFinite else {
    print("error: the evaluation did not complete in PointMass-v0")
    exit(1)
}

// 5. An application's loop: the policy and its environment's entry, from the checkpoint.
let (policy, entry) = try DecisionPolicy.withEnvironment(checkpointPath: run.directory.checkpointPath)
let simulator = try entry.make()
var observation = simulator.reset(seed: 7)
var action = [Float](repeating: 0, count: entry.actionWidth)
policy.reset(targetReturn: Float(best))
var episodeReturn = 0.0
while true {
    var actionSpan = action.mutableSpan
    try policy.action(for: observation.span, into: &actionSpan)
    var observationSpan = observation.mutableSpan
    let outcome = try simulator.step(action: action.span, observation: &observationSpan)
    episodeReturn += outcome.reward
    if outcome.isDone { break }
    policy.record(reward: Float(outcome.reward))
}
print("one episode of \(entry.id) through DecisionPolicy: return \(String(format: "%.1f", episodeReturn)) in \(simulator.elapsedSteps) steps")
