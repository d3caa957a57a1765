import MallocCounter
import Testing

@testable import DecisionFlow

/// A warm training step (forward, backward, clipping, AdamW) makes no heap allocation.
@Suite struct AllocationTests {
    /// The counter itself: it must see the Swift runtime's allocations, or the test below
    /// would pass vacuously.
    @Test func counterSeesSwiftAllocations() {
        malloc_counter_start()
        let array = [Int](repeating: 7, count: Int.random(in: 1000...2000))
        keep(ScratchBox(value: array.count))
        let count = malloc_counter_stop()
        #expect(count >= 2, "counted \(count) allocations for an array and an escaping object")
    }

    final class ScratchBox: @unchecked Sendable {
        let value: Int
        init(value: Int) { self.value = value }
    }

    /// Makes `object` escape, so the optimizer cannot put it on the stack.
    @inline(never) func keep(_ object: ScratchBox) { Self.kept.append(object) }
    nonisolated(unsafe) static var kept: [ScratchBox] = []

    /// Allocation-freedom is a property of optimized code: unoptimized (-Onone) builds box
    /// unspecialized generics on the heap. The README's test command builds with -c release.
    @Test(
        .enabled(if: !_isDebugAssertConfiguration(), "needs an optimized build: run `swift test -c release`"),
        arguments: AttentionKind.allCases)
    func warmTrainingStepAllocatesNothing(attention: AttentionKind) {
        let (model, batch) = smallModelAndBatch(attention: attention, seed: 5)
        var optimizer = AdamW(layout: model.layout)
        func step() {
            model.forward(batch, training: true)
            model.backward()
            clipGradientNorm(model.gradients, maxNorm: 0.25)
            optimizer.update(
                parameters: model.parameters, gradients: UnsafeBufferPointer(model.gradients), learningRate: 1e-3)
        }
        step()
        step()
        malloc_counter_start()
        step()
        let count = malloc_counter_stop()
        #expect(count == 0, "a warm \(attention) training step made \(count) heap allocations")
    }
}

/// The embedding API allocates nothing per decision once warm.
@Suite struct PolicyAllocationTests {
    @Test(.enabled(if: !_isDebugAssertConfiguration(), "needs an optimized build: run `swift test -c release`"))
    func warmDecisionsAllocateNothing() throws {
        let (model, _) = smallModelAndBatch(seed: 4)
        let policy = DecisionPolicy(model: model, normalization: .identity(stateDimension: 5))
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
        malloc_counter_start()
        for _ in 0..<3 {
            try policy.action(for: UnsafeBufferPointer(observation), into: action)
            policy.record(reward: 0.5)
        }
        let count = malloc_counter_stop()
        #expect(count == 0, "three warm decisions made \(count) heap allocations")

        // A new episode: its first decision runs the window, the next ones continue the
        // carried Flow-Attention state (four tokens each).
        malloc_counter_start()
        policy.reset(targetReturn: 5)
        for _ in 0..<3 {
            try policy.action(for: UnsafeBufferPointer(observation), into: action)
            policy.record(reward: 0.5)
        }
        let growing = malloc_counter_stop()
        #expect(policy.lastPassTokenCount == 4)
        #expect(growing == 0, "a reset and three decisions on a growing window made \(growing) heap allocations")
    }
}
