import CHDF5

/// The single owner of one HDF5 identifier; closes it when the owner goes away.
///
/// Every identifier this module opens is wrapped in exactly one `HDF5Handle` (or closed by
/// a `defer` in the function that opened it), so no handle leaks and none is closed twice.
final class HDF5Handle {
    enum Kind {
        case file, group, dataset, dataspace, datatype, propertyList, attribute, object
    }

    let id: hid_t
    let kind: Kind

    init(_ id: hid_t, kind: Kind) {
        self.id = id
        self.kind = kind
    }

    deinit { HDF5Handle.close(id, kind: kind) }

    /// Closes a raw identifier of the given kind. Failures are ignored: nothing useful can be
    /// done about a failing close in a deinit, and HDF5 releases the memory regardless.
    static func close(_ id: hid_t, kind: Kind) {
        guard id >= 0 else { return }
        switch kind {
        case .file: _ = H5Fclose(id)
        case .group: _ = H5Gclose(id)
        case .dataset: _ = H5Dclose(id)
        case .dataspace: _ = H5Sclose(id)
        case .datatype: _ = H5Tclose(id)
        case .propertyList: _ = H5Pclose(id)
        case .attribute: _ = H5Aclose(id)
        case .object: _ = H5Oclose(id)
        }
    }
}
