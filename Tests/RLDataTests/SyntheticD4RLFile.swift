import Foundation
import RLData

/// Writes small D4RL-schema files with deliberate variations (dtypes, shapes, missing keys,
/// bad values) through the HDF5 layer, so each loader path can be tested on purpose.
struct SyntheticD4RLFile {
    enum Ending { case terminal, timeout, none }
    enum FlagType { case bool, uint8, float32 }

    var episodes: [(length: Int, ending: Ending)] = [(5, .terminal), (3, .timeout), (4, .terminal)]
    var observationDimension = 3
    var actionDimension = 2
    var floatType: HDF5StorageType = .float32
    var rewardsAsColumn = false
    var flagType: FlagType = .bool
    var includeTimeouts = true
    var includeNextObservations = true
    var omittedKeys: Set<String> = []
    /// Rows to drop from the end of one key, to make lengths disagree.
    var shortenedKey: String? = nil
    /// Whether `actions` is written as a flat (N·A,) vector instead of (N, A).
    var flattenActions = false
    /// Called on the arrays before writing, to plant bad values.
    var patch: (inout Arrays) -> Void = { _ in }
    var metadata: [String: String] = [:]
    /// With float32 flags: a row of `terminals` that holds NaN instead of 0 or 1.
    var nanTerminalAt: Int? = nil

    struct Arrays {
        var observations: [Double]
        var actions: [Double]
        var rewards: [Double]
        var terminals: [Bool]
        var timeouts: [Bool]
    }

    var steps: Int { episodes.reduce(0) { $0 + $1.length } }

    /// The values the file holds (before `patch`), computed independently of any loader.
    func arrays() -> Arrays {
        let n = steps
        let observations = (0..<(n * observationDimension)).map { index in
            Double(index / observationDimension) + Double(index % observationDimension) / 10
        }
        let actions = (0..<(n * actionDimension)).map { sin(Double($0)) }
        let rewards = (0..<n).map { Double($0 % 7) - 1.5 }
        var terminals = [Bool](repeating: false, count: n)
        var timeouts = [Bool](repeating: false, count: n)
        var end = 0
        for episode in episodes {
            end += episode.length
            switch episode.ending {
            case .terminal: terminals[end - 1] = true
            case .timeout: timeouts[end - 1] = true
            case .none: break
            }
        }
        return Arrays(
            observations: observations, actions: actions, rewards: rewards, terminals: terminals,
            timeouts: timeouts)
    }

    @discardableResult
    func write(to path: String) throws -> Arrays {
        var values = arrays()
        patch(&values)
        let file = try HDF5File.create(path)
        let n = steps
        func rows(_ key: String) -> Int { key == shortenedKey ? n - 1 : n }
        func put(_ key: String, _ data: [Double], width: Int) throws {
            guard !omittedKeys.contains(key) else { return }
            let count = rows(key)
            let shape = width == 1 && !(key == "rewards" && rewardsAsColumn) ? [count] : [count, width]
            let flat = key == "actions" && flattenActions
            try file.write(
                Array(data.prefix(count * width)), to: key, type: floatType,
                shape: flat ? [count * width] : shape)
        }
        func putFlags(_ key: String, _ flags: [Bool]) throws {
            guard !omittedKeys.contains(key) else { return }
            let data = Array(flags.prefix(rows(key)))
            switch flagType {
            case .bool: try file.write(data, to: key)
            case .uint8: try file.write(data.map { UInt8($0 ? 1 : 0) }, to: key, type: .uint8, shape: [data.count])
            case .float32:
                var values = data.map { Float($0 ? 1 : 0) }
                if key == "terminals", let row = nanTerminalAt { values[row] = .nan }
                try file.write(values, to: key, type: .float32, shape: [data.count])
            }
        }
        try put("observations", values.observations, width: observationDimension)
        if includeNextObservations {
            try put("next_observations", values.observations.map { $0 + 1 }, width: observationDimension)
        }
        try put("actions", values.actions, width: actionDimension)
        try put("rewards", values.rewards, width: 1)
        try putFlags("terminals", values.terminals)
        if includeTimeouts { try putFlags("timeouts", values.timeouts) }
        for (key, value) in metadata { try file.writeString(value, to: "metadata/\(key)") }
        return values
    }
}
