import ArgumentParser
import DecisionFlow
import DecisionFlowTraining
import Foundation
import RLData

/// `d4rl-run bench train`: end-to-end training throughput and the sampler's share of it.
struct TrainingBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Measure end-to-end training steps per second and what window sampling costs.",
        discussion: """
            Trains the dt-default model (flow, 128 wide, 3 layers, 1 head, batch 64, K 20) on \
            the dataset for --steps steps after --warmup, timing whole steps (sampling \
            included); then, in the same run, times --steps batch fills of the sampler alone. \
            The sampler's share is its time per batch over the time per step.
            """
    )

    @Option(help: "The D4RL file to train on.")
    var dataset = "data/hopper-medium-replay-tail25k.hdf5"

    @Option(help: "Timed steps.")
    var steps = 30

    @Option(help: "Untimed warm-up steps.")
    var warmup = 3

    func validate() throws {
        guard (1...1_000_000).contains(steps) else {
            throw ValidationError("--steps must be from 1 to 1000000 (it is \(steps))")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative (it is \(warmup))") }
    }

    @OptionGroup var threadOptions: ThreadOptions
    /// Worker threads (default 2).
    var threads: Int { threadOptions.count() }

    func run() throws {
        let data = try D4RLDataset(file: dataset)
        var configuration = TrainingConfiguration()
        configuration.datasets = [dataset]
        configuration.threads = threads
        configuration.steps = warmup + steps
        let trainer = try Trainer(configuration: configuration, dataset: data)
        for _ in 0..<warmup { try trainer.trainStep() }
        let clock = ContinuousClock()
        let trainingTime = try clock.measure { for _ in 0..<steps { try trainer.trainStep() } }

        var sampler = trainer.sampler
        let batch = TrajectoryBatch(
            capacity: configuration.batchSize, timesteps: configuration.contextLength,
            stateDimension: data.observationDimension, actionDimension: data.actionDimension)
        let samplingTime = clock.measure { for _ in 0..<steps { sampler.fill(batch) } }

        func milliseconds(_ duration: Duration) -> Double {
            duration / .seconds(1) * 1000
                / Double(steps)
        }
        let step = milliseconds(trainingTime)
        let sample = milliseconds(samplingTime)
        print(
            "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; threads \(threads); dt-default flow model, batch 64, K 20, \(dataset)"
        )
        print(String(format: "end to end      %7.1f ms/step   %5.2f steps/s", step, 1000 / step))
        print(String(format: "sampler alone   %7.3f ms/batch  %5.2f%% of a step", sample, 100 * sample / step))
    }
}
