import DecisionFlow
import DecisionFlowEvaluation
import DecisionFlowTraining
import RLEnvironments

/// Rollouts split across the processes of a group: rank r runs its contiguous share of the
/// episodes (episode i still resets with seed + i), and every rank gets all results, in
/// episode order. With one process this is `RolloutEvaluation.run` itself.
enum ParallelRollouts {
    /// This process's share of `count` episodes.
    static func share(of count: Int, in group: any ProcessGroup) -> Range<Int> { group.slice(of: count) }

    /// Runs this process's share with `model` (batch capacity at least the share) in
    /// `environments` (one per episode of the share), and gathers every process's results.
    static func run(
        group: any ProcessGroup, count: Int, model: DecisionTransformer, encoding: ContextEncoding,
        environments: [any Environment], target: Double, seed: UInt64, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [EpisodeResult] {
        let share = share(of: count, in: group)
        precondition(environments.count == share.count, "one environment per episode of this process's share")
        let local =
            share.isEmpty
            ? []
            : try RolloutEvaluation.run(
                model: model, encoding: encoding, environments: environments, target: target,
                seed: seed &+ UInt64(share.lowerBound), progress: progress)
        guard group.size > 1 else { return local }
        // Equal-sized contributions (the largest share), padded with NaN, in rank order.
        let widest = (count + group.size - 1) / group.size
        var mine = [Double](repeating: .nan, count: 2 * widest)
        for (index, result) in local.enumerated() {
            mine[2 * index] = result.episodeReturn
            mine[2 * index + 1] = Double(result.length)
        }
        let all = try group.allGather(mine)
        var results: [EpisodeResult] = []
        for rank in 0..<group.size {
            for index in 0..<widest {
                let offset = rank * 2 * widest + 2 * index
                guard !all[offset + 1].isNaN else { continue }
                results.append(EpisodeResult(episodeReturn: all[offset], length: Int(all[offset + 1])))
            }
        }
        return results
    }
}
