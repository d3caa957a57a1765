import Testing

/// What `closeness` found when two sequences of numbers disagree.
///
/// Every numeric comparison in the suite goes through `closeness`, so a NaN, an infinity or a
/// count mismatch can never pass by accident: `|a − b| ≤ tolerance` is false for a NaN, and a
/// helper that only records the *largest* excess (as an older one here did) never sees it.
public struct Mismatch: CustomStringConvertible, Sendable {
    /// Elements compared, and the counts of both sides.
    public var actualCount: Int
    public var expectedCount: Int
    /// Elements outside the tolerance, non-finite mismatches included.
    public var offCount: Int
    /// The element whose error exceeds its allowance by the most, among the finite ones.
    public var worst: (index: Int, actual: Double, expected: Double)?
    /// The first element where exactly one side is NaN or infinite, or both are infinite
    /// with different signs.
    public var firstNonFinite: (index: Int, actual: Double, expected: Double)?
    public var atol: Double
    public var rtol: Double

    public var description: String {
        var parts: [String] = []
        if actualCount != expectedCount { parts.append("\(actualCount) values against \(expectedCount) expected") }
        if offCount > 0 {
            parts.append("\(offCount) of \(min(actualCount, expectedCount)) elements off (atol \(atol), rtol \(rtol))")
        }
        if let (index, actual, expected) = firstNonFinite {
            parts.append("first non-finite mismatch: element \(index) is \(actual), expected \(expected)")
        }
        if let (index, actual, expected) = worst {
            let error = abs(actual - expected)
            parts.append("worst: element \(index) is \(actual), expected \(expected) (error \(error))")
        }
        return parts.joined(separator: "; ")
    }
}

/// Compares `actual` with `expected` element by element: each pair must satisfy
/// |a − e| ≤ atol + rtol·|e|, a NaN or infinity must meet the same on the other side, and the
/// counts must be equal. Returns nil when they agree, otherwise what disagrees.
public func closeness<A: Collection, E: Collection>(
    _ actual: A, _ expected: E, atol: Double, rtol: Double
) -> Mismatch? where A.Element: BinaryFloatingPoint, E.Element: BinaryFloatingPoint {
    // A NaN or negative tolerance would let every pair through.
    precondition(atol >= 0 && rtol >= 0 && atol.isFinite && rtol.isFinite, "tolerances must be finite and ≥ 0")
    var mismatch = Mismatch(
        actualCount: actual.count, expectedCount: expected.count, offCount: 0, worst: nil, firstNonFinite: nil,
        atol: atol, rtol: rtol)
    var worstExcess = -Double.infinity
    for (index, (a, e)) in zip(actual, expected).enumerated() {
        let x = Double(a)
        let y = Double(e)
        if x.isFinite && y.isFinite {
            let excess = abs(x - y) - (atol + rtol * abs(y))
            if excess > 0 {
                mismatch.offCount += 1
                if excess > worstExcess {
                    worstExcess = excess
                    mismatch.worst = (index, x, y)
                }
            }
        } else {
            // Both NaN, or the same infinity, agree; anything else does not.
            let agree = (x.isNaN && y.isNaN) || (x.isInfinite && x == y)
            if !agree {
                mismatch.offCount += 1
                if mismatch.firstNonFinite == nil { mismatch.firstNonFinite = (index, x, y) }
            }
        }
    }
    return mismatch.offCount == 0 && actual.count == expected.count ? nil : mismatch
}

/// Records a test issue, labelled, when `actual` and `expected` disagree (see `closeness`).
public func expectClose<A: Collection, E: Collection>(
    _ actual: A, _ expected: E, atol: Double, rtol: Double, _ label: String,
    sourceLocation: SourceLocation = #_sourceLocation
) where A.Element: BinaryFloatingPoint, E.Element: BinaryFloatingPoint {
    if let mismatch = closeness(actual, expected, atol: atol, rtol: rtol) {
        Issue.record("\(label): \(mismatch)", sourceLocation: sourceLocation)
    }
}

/// The single-value form: a loss, a norm, a score.
public func expectClose<T: BinaryFloatingPoint, U: BinaryFloatingPoint>(
    _ actual: T, _ expected: U, atol: Double, rtol: Double, _ label: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    if let mismatch = closeness(CollectionOfOne(actual), CollectionOfOne(expected), atol: atol, rtol: rtol) {
        Issue.record("\(label): \(mismatch)", sourceLocation: sourceLocation)
    }
}

/// The optional single-value form: nil (a missing score, say) fails, naming the label.
public func expectClose<T: BinaryFloatingPoint, U: BinaryFloatingPoint>(
    _ actual: T?, _ expected: U, atol: Double, rtol: Double, _ label: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let actual else {
        Issue.record("\(label): nil, expected \(expected)", sourceLocation: sourceLocation)
        return
    }
    expectClose(actual, expected, atol: atol, rtol: rtol, label, sourceLocation: sourceLocation)
}
