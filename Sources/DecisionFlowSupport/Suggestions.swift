/// "Did you mean" hints: the candidates nearest a name a user mistyped.
public enum Suggestions {
    /// The candidate closest to `name` by edit distance, ignoring case (the first of equally
    /// close ones); nil when there are no candidates.
    public static func nearest(to name: String, among candidates: [String]) -> String? {
        candidates.min { editDistance($0, name) < editDistance($1, name) }
    }

    /// The candidates within `distance` edits of `name` (ignoring case), or that contain it or
    /// are contained in it, nearest first, at most `limit` of them.
    public static func close(to name: String, among candidates: [String], distance: Int = 3, limit: Int = 5) -> [String] {
        let lowered = name.lowercased()
        let scored = candidates.compactMap { candidate -> (String, Int)? in
            let other = candidate.lowercased()
            let edits = editDistance(other, lowered)
            let contains = !lowered.isEmpty && (other.contains(lowered) || lowered.contains(other))
            return edits <= distance || contains ? (candidate, edits) : nil
        }
        return Array(scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(limit).map(\.0))
    }

    /// Levenshtein distance, ignoring case.
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased())
        let b = Array(b.lowercased())
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
