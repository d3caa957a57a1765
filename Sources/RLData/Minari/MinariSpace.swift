/// An observation or action space of a Minari dataset, as far as a flat step table can hold it.
///
/// Minari records each space as the JSON gymnasium's `serialize_space` writes. A `Box` is a
/// block of numbers, used as is (flattened row-major when it has more than one dimension). A
/// `Dict` of Boxes (nested Dicts too) is flattened the way `gymnasium.spaces.flatten` does it:
/// its keys in the space's own order, which is the order the JSON lists them (gymnasium sorts
/// the keys when a Dict is built from a plain dict), each key's values one after another.
/// Every other space (Discrete, Tuple, Text, Graph, ...) is refused by name.
public indirect enum MinariSpace: Equatable, Sendable {
    /// A block of numbers of the given shape, stored with the given NumPy dtype name.
    case box(shape: [Int], dtype: String)
    /// Named subspaces, in flattening order.
    case dict([MinariSubspace])

    /// The number of values a flattened element holds.
    public var flatWidth: Int {
        switch self {
        case .box(let shape, _): return shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        case .dict(let members): return members.reduce(0) { $0 + $1.space.flatWidth }
        }
    }

    /// The Boxes of the space in flattening order: each one's path below the space's group
    /// (empty for a plain Box), its columns in the flattened row, and its NumPy dtype.
    public var leaves: [(path: String, columns: Range<Int>, dtype: String)] {
        var result: [(path: String, columns: Range<Int>, dtype: String)] = []
        var column = 0
        func visit(_ space: MinariSpace, _ path: String) {
            switch space {
            case .box(_, let dtype):
                result.append((path, column..<(column + space.flatWidth), dtype))
                column += space.flatWidth
            case .dict(let members):
                for member in members { visit(member.space, path.isEmpty ? member.key : "\(path)/\(member.key)") }
            }
        }
        visit(self, "")
        return result
    }

    /// Where each Box lands in the flattened row, e.g. `desired_goal[0..<2], observation[2..<17]`;
    /// `Box(11)` for a plain Box. Recorded in the dataset's metadata as `observation_layout`.
    public var layoutDescription: String {
        if case .box(let shape, _) = self { return "Box\(shape)" }
        return leaves.map { "\($0.path)[\($0.columns.lowerBound)..<\($0.columns.upperBound)]" }.joined(
            separator: ", ")
    }

    /// gymnasium's JSON for this space, as `serialize_space` writes it (bounds unbounded for a
    /// Box: a recording does not know them).
    var serialized: OrderedJSON {
        switch self {
        case .box(let shape, let dtype):
            let count = shape.reduce(1, *)
            return .object([
                ("type", .string("Box")), ("dtype", .string(dtype)), ("shape", .array(shape.map { .number(Double($0)) })),
                ("low", .array(Array(repeating: .number(-.infinity), count: count))),
                ("high", .array(Array(repeating: .number(.infinity), count: count))),
            ])
        case .dict(let members):
            return .object([
                ("type", .string("Dict")),
                ("subspaces", .object(members.map { ($0.key, $0.space.serialized) })),
            ])
        }
    }

    /// The widest a space may be: larger rows are refused before anything is allocated.
    static let maximumWidth = 1 << 24

    /// Reads gymnasium's JSON for a space; `describe` names the space in errors.
    static func parse(_ json: OrderedJSON, depth: Int = 0) throws(SpaceProblem) -> MinariSpace {
        guard depth < 16 else { throw SpaceProblem("nests more than 16 Dict levels") }
        guard let type = json["type"]?.stringValue else { throw SpaceProblem("has no \"type\"") }
        switch type {
        case "Box":
            guard case .array(let dims)? = json["shape"] else { throw SpaceProblem("is a Box without a \"shape\"") }
            var shape: [Int] = []
            var width = 1
            for dim in dims {
                guard let size = dim.integerValue else { throw SpaceProblem("is a Box whose shape \(json["shape"]!.serialized) is not a list of sizes") }
                let (product, overflow) = width.multipliedReportingOverflow(by: size)
                guard !overflow, product <= maximumWidth else {
                    throw SpaceProblem("is a Box of shape \(shape + [size]), more than \(maximumWidth) values")
                }
                width = product
                shape.append(size)
            }
            let dtype = json["dtype"]?.stringValue ?? "float32"
            let numeric = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"]
            guard numeric.contains(dtype) else { throw SpaceProblem("is a Box of dtype \(dtype), not numbers") }
            return .box(shape: shape, dtype: dtype)
        case "Dict":
            guard case .object(let members)? = json["subspaces"] else {
                throw SpaceProblem("is a Dict without \"subspaces\"")
            }
            guard !members.isEmpty else { throw SpaceProblem("is a Dict with no subspaces") }
            var subspaces: [MinariSubspace] = []
            var width = 0
            for member in members {
                guard !member.key.isEmpty, !member.key.contains("/"), !subspaces.contains(where: { $0.key == member.key }) else {
                    throw SpaceProblem("is a Dict with an empty, repeated or slash-containing key \"\(member.key)\"")
                }
                let space: MinariSpace
                do {
                    space = try parse(member.value, depth: depth + 1)
                } catch {
                    throw SpaceProblem("has a subspace \"\(member.key)\" that \(error.problem)")
                }
                width += space.flatWidth
                guard width <= maximumWidth else { throw SpaceProblem("is a Dict of more than \(maximumWidth) values") }
                subspaces.append(MinariSubspace(key: member.key, space: space))
            }
            return .dict(subspaces)
        default:
            throw SpaceProblem("is a \(type) space; DecisionFlow reads Box spaces and Dicts of Boxes")
        }
    }

    /// Why a space cannot be used: completes the sentence "the space ...".
    struct SpaceProblem: Error {
        var problem: String
        init(_ problem: String) { self.problem = problem }
    }
}

/// One named member of a Dict space.
public struct MinariSubspace: Equatable, Sendable {
    /// The key, as the dataset's HDF5 group names it.
    public var key: String
    /// The member's space.
    public var space: MinariSpace

    /// Creates a member; see the properties for the meaning of each value.
    public init(key: String, space: MinariSpace) {
        self.key = key
        self.space = space
    }
}
