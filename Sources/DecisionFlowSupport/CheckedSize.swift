#if canImport(Glibc)
    import Glibc
#endif

/// This machine's physical memory in bytes, from `sysconf` (Int.max when it cannot say): the
/// bound every size read from a file is checked against before allocating.
public let physicalMemoryBytes: Int = {
    let pages = sysconf(Int32(_SC_PHYS_PAGES))
    let pageSize = sysconf(Int32(_SC_PAGESIZE))
    return pages > 0 && pageSize > 0 ? pages.multipliedReportingOverflow(by: pageSize).partialValue : Int.max
}()

/// Sizes multiplied and added with overflow checks: nil as soon as a step overflows, and nil in,
/// nil out.
public enum CheckedSize {
    /// The product of `factors`, or nil when one is nil or negative or the product overflows.
    public static func product(_ factors: Int?...) -> Int? { product(of: factors) }

    /// The product of `factors`, or nil when one is nil or negative or the product overflows.
    public static func product(of factors: [Int?]) -> Int? {
        var result = 1
        for factor in factors {
            guard let factor, factor >= 0 else { return nil }
            let (value, overflow) = result.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            result = value
        }
        return result
    }

    /// The sum of `terms`, or nil when one is nil or negative or the sum overflows.
    public static func sum(_ terms: Int?...) -> Int? {
        var result = 0
        for term in terms {
            guard let term, term >= 0 else { return nil }
            let (value, overflow) = result.addingReportingOverflow(term)
            if overflow { return nil }
            result = value
        }
        return result
    }
}
