import ArgumentParser
import CBLAS
@_spi(Benchmarks) import DecisionFlow
import Foundation

/// `d4rl-run bench model`: training-step time against the sgemm rate on the same shapes.
struct ModelBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Time training steps (forward, backward, AdamW) and compare with cblas_sgemm.",
        discussion: """
            For each configuration: batch 64, K 20, random inputs. Reports ms per training \
            step (median of --steps after --warmup), the step's matrix-product FLOPs, the FLOP/s \
            that makes, and that rate as a share of cblas_sgemm's own rate on exactly the \
            step's products, measured in the same run with the same threads.
            """
    )

    /// Per configuration: 20 timed steps after 3 warm-up steps.
    enum Timing: StepTimingDefaults { static let steps = 20, warmup = 3 }
    @OptionGroup var timing: StepTiming<Timing>

    @Option(parsing: .unconditional, help: "Batch size.")
    var batch = 64

    func validate() throws {
        try requireFlag("batch", batch, in: 1...4_096)
        _ = try listFlag("configs", configs)
    }

    @Option(help: "Configurations: dt-default, paper, softmax (comma-separated).")
    var configs = "dt-default,paper,softmax"

    func run() throws {
        print(
            "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; threads \(timing.threads); batch \(batch), K 20")
        print("config        ms/step   GFLOP/step   GFLOP/s   sgemm GFLOP/s (same shapes)   share")
        for name in try listFlag("configs", configs) {
            guard let configuration = Self.named(name) else {
                throw ValidationError("unknown configuration '\(name)': use dt-default, paper or softmax")
            }
            let (milliseconds, cost) = Self.timeTraining(
                configuration, batch: batch, steps: timing.steps, warmup: timing.warmup, threads: timing.threads)
            let sgemm = Self.sgemmRate(cost, repeats: 3, threads: timing.threads)
            let rate = cost.flops / (milliseconds / 1000) / 1e9
            print(
                name.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(
                        format: " %8.1f   %10.2f   %7.1f   %27.1f   %4.0f%%",
                        milliseconds, cost.flops / 1e9, rate, sgemm, 100 * rate / sgemm))
        }
    }

    static func named(_ name: String) -> ModelConfiguration? {
        switch name {
        case "dt-default":
            return ModelConfiguration(
                stateDimension: 11, actionDimension: 3, embeddingDimension: 128, layerCount: 3, headCount: 1)
        case "paper":
            return ModelConfiguration(
                stateDimension: 11, actionDimension: 3, embeddingDimension: 256, layerCount: 3, headCount: 4)
        case "softmax":
            return ModelConfiguration(
                stateDimension: 11, actionDimension: 3, embeddingDimension: 128, layerCount: 3, headCount: 1,
                attention: .softmax)
        default: return nil
        }
    }

    /// Median milliseconds of a full training step, and the step's cost.
    static func timeTraining(
        _ configuration: ModelConfiguration, batch: Int, steps: Int, warmup: Int, threads: Int,
        flowChunkLength: Int? = nil
    ) -> (Double, ModelCost) {
        let model = DecisionTransformer(
            configuration: configuration, batchCapacity: batch, seed: 1, threads: threads,
            flowChunkLength: flowChunkLength)
        let data = TrajectoryBatch(
            capacity: batch, timesteps: configuration.contextLength, stateDimension: configuration.stateDimension,
            actionDimension: configuration.actionDimension)
        var generator = RandomGenerator(seed: 2)
        for i in data.states.indices { data.states[i] = generator.nextGaussian() }
        for i in data.actions.indices { data.actions[i] = generator.nextFloat() * 2 - 1 }
        for i in data.returnsToGo.indices { data.returnsToGo[i] = generator.nextFloat() * 3 }
        data.mask = [Float](repeating: 1, count: data.mask.count)
        for i in data.timestepIndices.indices {
            data.timestepIndices[i] = Int32(i % configuration.contextLength % configuration.maxEpisodeLength)
        }
        var optimizer = AdamW(layout: model.layout)
        var times: [Double] = []
        for step in 0..<(warmup + steps) {
            let start = DispatchTime.now().uptimeNanoseconds
            model.forward(data, training: true)
            model.backward(data)
            clipGradientNorm(of: model, maxNorm: 0.25)
            optimizer.update(model, learningRate: 1e-4)
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            if step >= warmup { times.append(elapsed) }
        }
        times.sort()
        return (
            times[times.count / 2],
            ModelCost(configuration: configuration, batch: batch, flowChunkLength: model.flowChunkLength)
        )
    }

    /// cblas_sgemm's GFLOP/s over the step's own products (each timed as often as it occurs),
    /// with OpenBLAS's own threading at `threads` threads.
    static func sgemmRate(_ cost: ModelCost, repeats: Int, threads: Int) -> Double {
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(1) }
        let largest =
            cost.products.map {
                max($0.product.m * $0.product.k, $0.product.k * $0.product.n, $0.product.m * $0.product.n)
            }.max() ?? 1
        let a = [Float](repeating: 0.01, count: largest)
        let b = [Float](repeating: 0.02, count: largest)
        var c = [Float](repeating: 0, count: largest)
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            for (product, count) in cost.products {
                for _ in 0..<count {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(product.m), Int32(product.n), Int32(product.k),
                        1, a, Int32(product.k), b, Int32(product.n), 0, &c, Int32(product.n))
                }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return cost.flops / best / 1e9
    }
}
