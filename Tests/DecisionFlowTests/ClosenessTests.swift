import Testing
import TestSupport

/// The suite's one numeric comparison (`TestSupport.closeness`) can fail: every way two
/// sequences of numbers can disagree is caught and described.
@Suite struct ClosenessTests {
    @Test func agreementWithinTheToleranceIsNoMismatch() {
        #expect(closeness([1.0, 2.0, -3.0], [1.0, 2.0 + 1e-7, -3.0], atol: 1e-6, rtol: 0) == nil)
        // rtol scales with the expected side: 1000 ± 0.05 passes at rtol 1e-4.
        #expect(closeness([Float(1000.05)], [1000.0], atol: 0, rtol: 1e-4) == nil)
        #expect(closeness([Float](), [Double](), atol: 0, rtol: 0) == nil)
    }

    @Test func aNaNOnEitherSideIsAMismatch() throws {
        let left = try #require(closeness([1, .nan, 3] as [Float], [1, 2, 3] as [Float], atol: 1, rtol: 1))
        #expect(left.offCount == 1 && left.firstNonFinite?.index == 1)
        #expect("\(left)".contains("element 1 is nan, expected 2.0"))
        let right = try #require(closeness([1, 2, 3] as [Double], [1, 2, .nan] as [Double], atol: 1, rtol: 1))
        #expect(right.firstNonFinite?.index == 2)
        // NaN on both sides at the same place agrees.
        #expect(closeness([Double.nan], [Float.nan], atol: 0, rtol: 0) == nil)
    }

    @Test func infinitiesMustMatchExactly() throws {
        #expect(closeness([Double.infinity], [Double.infinity], atol: 0, rtol: 0) == nil)
        #expect(closeness([-Double.infinity], [Double.infinity], atol: 1e300, rtol: 1) != nil)
        let finiteAgainstInfinite = try #require(closeness([1e30], [Double.infinity], atol: 1e300, rtol: 1))
        #expect(finiteAgainstInfinite.firstNonFinite?.index == 0)
    }

    @Test func differentCountsAreAMismatchEvenWhenThePrefixAgrees() throws {
        let mismatch = try #require(closeness([1.0, 2.0], [1.0, 2.0, 3.0], atol: 0, rtol: 0))
        #expect(mismatch.offCount == 0 && "\(mismatch)".contains("2 values against 3 expected"))
    }

    @Test func theWorstElementAndTheCountOffAreReported() throws {
        let mismatch = try #require(
            closeness([0.0, 1.5, 10.0, 2.0], [0.0, 1.0, 7.0, 2.0], atol: 0.1, rtol: 0))
        #expect(mismatch.offCount == 2)
        #expect(mismatch.worst?.index == 2 && mismatch.worst?.actual == 10 && mismatch.worst?.expected == 7)
        #expect("\(mismatch)".contains("2 of 4 elements off") && "\(mismatch)".contains("worst: element 2 is 10.0"))
    }

    @Test func theRecordingFormsFailWhereTheyShould() {
        withKnownIssue { expectClose(Float.nan, 1.0, atol: 1, rtol: 1, "a loss") } matching: { issue in
            "\(issue)".contains("a loss: ") && "\(issue)".contains("element 0 is nan")
        }
        withKnownIssue { expectClose(nil as Double?, 50, atol: 1, rtol: 0, "a score") } matching: { issue in
            "\(issue)".contains("a score: nil")
        }
        withKnownIssue { expectClose([1.0], [1.0, 2.0], atol: 1, rtol: 0, "values") } matching: { issue in
            "\(issue)".contains("1 values against 2 expected")
        }
        expectClose(0.30000000000000004, 0.3, atol: 1e-15, rtol: 0, "passes")
    }
}
