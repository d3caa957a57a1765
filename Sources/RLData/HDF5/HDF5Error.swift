import CHDF5

/// A failure reported by libhdf5, with the operation, file and object it concerned.
///
/// HDF5 keeps an error stack per thread. When a call fails, the Swift layer walks that
/// stack (innermost record first) and keeps each record's description, so a message such
/// as "file signature not found" reaches the user instead of being printed to stderr.
public struct HDF5Error: Error, CustomStringConvertible, Sendable {
    /// What the Swift layer was doing, e.g. "open file" or "read dataset".
    public var operation: String
    /// The file the operation concerned.
    public var file: String
    /// The object inside the file (a group, dataset or attribute path), if any.
    public var objectPath: String?
    /// HDF5's own error records, outermost first, as "function: description (detail)".
    public var stack: [String]

    public var description: String {
        var text = "HDF5 could not \(operation)"
        if let objectPath { text += " '\(objectPath)'" }
        text += " in '\(file)'"
        if let cause = stack.last { text += ": \(cause)" }
        return text
    }
}

/// Checks libhdf5 status codes and converts failures into `HDF5Error`s.
///
/// Every C call in this module goes through one of these functions, so no status code is
/// ignored and HDF5 never prints to stderr on its own.
enum HDF5Call {
    /// Switches off HDF5's automatic error printing for the calling thread.
    ///
    /// Why per call: Debian's libhdf5 is built thread-safe, and in such builds the
    /// auto-print setting is per thread, so a one-time call at start-up does not cover
    /// threads created later (for example the test runner's).
    static func silence() {
        _ = exitHandlerDisabled
        _ = H5Eset_auto2(swift_H5E_DEFAULT(), nil, nil)
    }

    /// Done once, before libhdf5's first call (every path into it starts with `silence()`):
    /// no teardown when the process exits. libhdf5's exit handler closes what is still open,
    /// and a file whose close failed (a full disk) crashed it there, after the error had been
    /// reported. Nothing needs it: writers close and flush their files themselves, and a
    /// recording that failed is deleted.
    private static let exitHandlerDisabled: Void = { _ = H5dont_atexit() }()

    /// Returns the handle, or throws if HDF5 reported a negative identifier.
    static func handle(
        _ id: hid_t, _ operation: String, file: String, object: String? = nil
    ) throws -> hid_t {
        if id < 0 { throw error(operation, file: file, object: object) }
        return id
    }

    /// Throws if HDF5 reported a negative status.
    static func check(
        _ status: herr_t, _ operation: String, file: String, object: String? = nil
    ) throws {
        if status < 0 { throw error(operation, file: file, object: object) }
    }

    /// Returns the tri-state answer as a Bool, or throws if HDF5 reported an error.
    static func truth(
        _ answer: htri_t, _ operation: String, file: String, object: String? = nil
    ) throws -> Bool {
        if answer < 0 { throw error(operation, file: file, object: object) }
        return answer > 0
    }

    /// Builds an error from the current thread's HDF5 error stack, then clears the stack.
    static func error(_ operation: String, file: String, object: String?) -> HDF5Error {
        final class Records { var lines: [String] = [] }
        let records = Records()
        let box = Unmanaged.passRetained(records)
        defer { box.release() }
        _ = H5Ewalk2(
            swift_H5E_DEFAULT(), H5E_WALK_DOWNWARD,
            { _, record, clientData in
                guard let record, let clientData else { return 0 }
                let records = Unmanaged<Records>.fromOpaque(clientData).takeUnretainedValue()
                let function = record.pointee.func_name.map { String(cString: $0) } ?? "?"
                var line = function
                if let description = record.pointee.desc.map({ String(cString: $0) }),
                    !description.isEmpty
                {
                    line += ": \(description)"
                }
                var detail = [CChar](repeating: 0, count: 256)
                if H5Eget_msg(record.pointee.min_num, nil, &detail, detail.count) > 0 {
                    let text = String(decoding: detail.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    if !text.isEmpty { line += " (\(text))" }
                }
                records.lines.append(line)
                return 0
            }, box.toOpaque())
        _ = H5Eclear2(swift_H5E_DEFAULT())
        return HDF5Error(operation: operation, file: file, objectPath: object, stack: records.lines)
    }
}
