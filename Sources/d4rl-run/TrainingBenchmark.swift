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

    /// 30 timed steps after 3 warm-up steps.
    enum Timing: StepTimingDefaults { static let steps = 30, warmup = 3 }
    @OptionGroup var timing: StepTiming<Timing>

    func run() throws {
        let data = try D4RLDataset(file: dataset)
        var configuration = TrainingConfiguration()
        configuration.datasets = [dataset]
        configuration.threads = timing.threads
        configuration.steps = timing.warmup + timing.steps
        let trainer = try Trainer(configuration: configuration, dataset: data)
        for _ in 0..<timing.warmup { try trainer.trainStep() }
        let clock = ContinuousClock()
        let trainingTime = try clock.measure { for _ in 0..<timing.steps { try trainer.trainStep() } }

        var sampler = trainer.sampler
        let batch = TrajectoryBatch(
            capacity: configuration.batchSize, timesteps: configuration.contextLength,
            stateDimension: data.observationDimension, actionDimension: data.actionDimension)
        let samplingTime = clock.measure { for _ in 0..<timing.steps { sampler.fill(batch) } }

        func milliseconds(_ duration: Duration) -> Double {
            duration / .seconds(1) * 1000
                / Double(timing.steps)
        }
        let step = milliseconds(trainingTime)
        let sample = milliseconds(samplingTime)
        print(
            "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; threads \(timing.threads); dt-default flow model, batch 64, K 20, \(dataset)"
        )
        print(String(format: "end to end      %7.1f ms/step   %5.2f steps/s", step, 1000 / step))
        print(String(format: "sampler alone   %7.3f ms/batch  %5.2f%% of a step", sample, 100 * sample / step))
    }
}
