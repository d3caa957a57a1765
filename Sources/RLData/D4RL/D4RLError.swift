/// Why a file could not be used as a D4RL dataset: which file, which key, what is wrong,
/// and what to do about it.
public struct D4RLError: Error, CustomStringConvertible, Sendable {
    /// The class of problem, for code that reacts to specific failures.
    public enum Kind: Equatable, Sendable {
        /// The file is missing, not HDF5, truncated or otherwise unreadable.
        case unreadableFile
        /// A required key is absent.
        case missingKey
        /// A key holds strings or another non-numeric type.
        case wrongType
        /// A key has the wrong number of dimensions.
        case wrongRank
        /// Keys disagree on the number of steps.
        case lengthMismatch
        /// Files (or keys) disagree on the observation or action width.
        case dimensionMismatch
        /// NaN or infinity in the data.
        case nonFinite
        /// The file holds no steps.
        case empty
        /// No episode ends with a terminal or timeout flag.
        case noCompleteEpisodes
        /// The file could not be written.
        case writeFailed
        /// The file declares more data than this machine's memory can hold.
        case tooLarge
    }

    /// The class of problem.
    public var kind: Kind
    /// The file concerned.
    public var file: String
    /// The HDF5 key concerned, if the problem is about one key.
    public var key: String?
    /// What is wrong.
    public var problem: String
    /// What the user can do next.
    public var remedy: String

    /// Creates an error; see the properties for the meaning of each value.
    public init(_ kind: Kind, file: String, key: String? = nil, problem: String, remedy: String) {
        self.kind = kind
        self.file = file
        self.key = key
        self.problem = problem
        self.remedy = remedy
    }

    public var description: String {
        var text = "\(file)"
        if let key { text += ": key '\(key)'" }
        return "\(text): \(problem). \(remedy)"
    }
}
