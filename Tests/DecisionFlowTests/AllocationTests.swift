import MallocCounter
import Testing
import TestSupport

@testable import DecisionFlow

/// A warm training step (forward, backward, clipping, AdamW) makes no heap allocation.
/// Serialized: two tests keep objects in one static array.
@Suite(.serialized) struct AllocationTests {
    /// The counter itself: it must see the Swift runtime's allocations, or the test below
    /// would pass vacuously.
    @Test func counterSeesSwiftAllocations() {
        malloc_counter_start()
        let array = [Int](repeating: 7, count: Int.random(in: 1000...2000))
        keep(ScratchBox(value: array.count))
        let count = malloc_counter_stop()
        #expect(count >= 2, "counted \(count) allocations for an array and an escaping object")
    }

    /// A parallel step runs every other work item on the model's worker threads: the
    /// counter must see their allocations too once they are attached, and only then (the
    /// count is per session, so tests running in parallel do not see each other's).
    @Test func counterSeesAllocationsOnTheModelsWorkers() {
        let (model, _) = smallModelAndBatch(threads: 2)
        #expect(model.work.threadCount == 2)
        func allocateOnWorkerOne() {
            model.work.forEach(2, 0) { _, _, worker in
                if worker == 1 { AllocationTests.keepNewBox() }
            }
        }
        malloc_counter_start()
        allocateOnWorkerOne()
        let unattached = malloc_counter_stop()
        #expect(unattached == 0, "a worker that is not attached counted \(unattached) allocations")
        let attached = Self.allocations(on: model.work) { allocateOnWorkerOne() }
        #expect(attached >= 1, "an allocation on worker 1 was not counted")
    }

    final class ScratchBox: @unchecked Sendable {
        let value: Int
        init(value: Int) { self.value = value }
    }

    /// Makes `object` escape, so the optimizer cannot put it on the stack.
    @inline(never) func keep(_ object: ScratchBox) { Self.kept.append(object) }
    nonisolated(unsafe) static var kept: [ScratchBox] = []
    /// Allocates an object that escapes (one call at a time).
    @inline(never) static func keepNewBox() { kept.append(ScratchBox(value: kept.count)) }

    /// Heap allocations made by `body` on the calling thread and on every worker thread of
    /// `work`, which are attached to the calling thread's count for the duration.
    static func allocations(on work: ParallelWork, _ body: () throws -> Void) rethrows -> Int {
        func attachWorkers(to session: UnsafeMutableRawPointer?) {
            // One item per worker: worker w runs item w. Worker 0 is the calling thread.
            work.forEach(work.threadCount, session) { raw, _, worker in
                if worker > 0 { malloc_counter_attach(raw.load(as: UnsafeMutableRawPointer?.self)) }
            }
        }
        // Once before counting: the first call from this module instantiates the generic
        // `forEach` for its argument type (a one-time allocation of the harness, not the body).
        attachWorkers(to: nil)
        malloc_counter_start()
        attachWorkers(to: malloc_counter_session())
        defer { attachWorkers(to: nil) }
        try body()
        return Int(malloc_counter_stop())
    }

    /// Allocation-freedom is a property of optimized code: unoptimized (-Onone) builds box
    /// unspecialized generics on the heap. The README's test command builds with -c release;
    /// in any other build each allocation test records a warning that it checked nothing, so
    /// the output says what was skipped.
    static func isOptimizedBuild(_ test: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        guard _isDebugAssertConfiguration() else { return true }
        Issue.record(
            "\(test) skipped: allocation-freedom needs an optimized build; run `swift test -c release`",
            severity: .warning, sourceLocation: sourceLocation)
        return false
    }

    @Test(arguments: AttentionKind.allCases)
    func warmTrainingStepAllocatesNothing(attention: AttentionKind) {
        guard Self.isOptimizedBuild("warmTrainingStepAllocatesNothing") else { return }
        let (model, batch) = smallModelAndBatch(attention: attention, seed: 5)
        let count = Self.allocationsOfAWarmTrainingStep(model, batch)
        #expect(count == 0, "a warm \(attention) training step made \(count) heap allocations")
    }

    /// Heap allocations of the third training step (forward, backward, clipping, AdamW).
    static func allocationsOfAWarmTrainingStep(_ model: DecisionTransformer, _ batch: TrajectoryBatch) -> Int {
        var optimizer = AdamW(layout: model.layout)
        func step() {
            model.forward(batch, training: true)
            model.backward(batch)
            clipGradientNorm(of: model, maxNorm: 0.25)
            optimizer.update(model, learningRate: 1e-3)
        }
        step()
        step()
        return allocations(on: model.work) { step() }
    }

    /// One long sequence and one head: fewer pairs than workers, so each pair's chunks are
    /// spread over the workers (`FlowChunkWork`); that path allocates nothing either.
    @Test func warmLongSequenceStepAllocatesNothing() {
        guard Self.isOptimizedBuild("warmLongSequenceStepAllocatesNothing") else { return }
        let model = DecisionTransformer(configuration: LongSequence.configuration, batchCapacity: 1, seed: 6)
        let count = Self.allocationsOfAWarmTrainingStep(model, LongSequence.batch())
        #expect(count == 0, "a warm long-sequence training step made \(count) heap allocations")
    }
}

/// One sequence of 100 timesteps (300 tokens, several chunks) through a one-head model.
enum LongSequence {
    static let configuration = ModelConfiguration(
        stateDimension: 5, actionDimension: 2, contextLength: 100, embeddingDimension: 16, layerCount: 2,
        headCount: 1, maxEpisodeLength: 200)

    static func batch() -> TrajectoryBatch {
        let batch = TrajectoryBatch(capacity: 1, timesteps: 100, stateDimension: 5, actionDimension: 2)
        batch.states = testValues(batch.states.count, seed: 41)
        batch.actions = testValues(batch.actions.count, seed: 42, scale: 0.9)
        batch.returnsToGo = testValues(batch.returnsToGo.count, seed: 43)
        batch.timestepIndices = (0..<100).map { Int32($0) }
        batch.mask = (0..<100).map { $0 < 93 ? 1 : 0 }
        return batch
    }
}

/// Spreading one pair's chunks over two workers gives what one worker computes: the same
/// loss and gradients, to rounding.
@Suite struct ChunkParallelTests {
    @Test func twoWorkersAgreeWithOne() {
        let reference = DecisionTransformer(configuration: LongSequence.configuration, batchCapacity: 1, seed: 7, threads: 1)
        let parallel = DecisionTransformer(configuration: LongSequence.configuration, batchCapacity: 1, seed: 7, threads: 2)
        let batch = LongSequence.batch()
        let loss = reference.forward(batch, training: false)
        let parallelLoss = parallel.forward(batch, training: false)
        expectClose([parallelLoss], [loss], atol: 1e-6, rtol: 1e-5, "loss")
        reference.backward(batch)
        parallel.backward(batch)
        expectClose(Array(parallel.gradients), Array(reference.gradients), atol: 1e-6, rtol: 1e-4, "gradients")
        #expect(reference.gradients.contains { $0 != 0 })
    }
}

/// The embedding API allocates nothing per decision once warm.
@Suite struct PolicyAllocationTests {
    @Test func warmDecisionsAllocateNothing() throws {
        guard AllocationTests.isOptimizedBuild("warmDecisionsAllocateNothing") else { return }
        let (model, _) = smallModelAndBatch(seed: 4)
        let policy = DecisionPolicy(model: model, encoding: .identity(for: model.configuration))
        let observation = UnsafeMutableBufferPointer<Float>.allocate(capacity: 5)
        let action = UnsafeMutableBufferPointer<Float>.allocate(capacity: 2)
        defer {
            observation.deallocate()
            action.deallocate()
        }
        observation.initialize(repeating: 0.25)
        policy.reset(targetReturn: 5)
        for _ in 0..<6 {  // past the window (K = 4), so the sliding path is warm too
            try policy.action(for: UnsafeBufferPointer(observation), into: action)
            policy.record(reward: 0.5)
        }
        let count = try AllocationTests.allocations(on: policy.engine.workspace.work) {
            for _ in 0..<3 {
                try policy.action(for: UnsafeBufferPointer(observation), into: action)
                policy.record(reward: 0.5)
            }
        }
        #expect(count == 0, "three warm decisions made \(count) heap allocations")

        // A new episode: its first decision runs the window, the next ones continue the
        // carried Flow-Attention state (four tokens each).
        let growing = try AllocationTests.allocations(on: policy.engine.workspace.work) {
            policy.reset(targetReturn: 5)
            for _ in 0..<3 {
                try policy.action(for: UnsafeBufferPointer(observation), into: action)
                policy.record(reward: 0.5)
            }
        }
        #expect(policy.lastPassTokenCount == 4)
        #expect(growing == 0, "a reset and three decisions on a growing window made \(growing) heap allocations")
    }
}
