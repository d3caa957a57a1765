import RLData
import RLEnvironments

/// Which environment a run is for, by one rule used when a run starts, resumes, and checks
/// its checkpoint.
///
/// The data's own id (D4RL's `metadata/behavior/env_id`, Minari's `env_spec`) comes first,
/// then the configuration's (a preset or `--environment`):
/// - a configuration that names a version (`Walker2d-v4`, `hopper-v5`, `PointMass-v0`) is
///   followed, whatever the data says;
/// - one that names a task without a version (`walker2d`, as the presets do) gets the version
///   the data was recorded in, so Minari's Walker2d-v5 data is evaluated in the v5 walker (a
///   warning says so when that differs from the name);
/// - one that names another task than the data's is followed, to evaluate mislabelled data in
///   the environment it really came from (a warning says so).
///
/// Whichever is chosen must have the data's widths.
enum RunEnvironment {
    /// The environment for data that names `dataID`, under a configuration that names
    /// `configured`, and anything worth a warning.
    ///
    /// - Throws: `TrainingError.badConfiguration` for a configured name the catalog does not
    ///   know (with its close matches), `TrainingError.mismatch` when the widths disagree.
    static func resolve(
        configured: String?, dataset: D4RLDataset, source: String, catalog: EnvironmentCatalog = .standard
    ) throws -> (entry: EnvironmentEntry?, warning: String?) {
        let files = dataset.files.joined(separator: ", ")
        let fromData = dataset.environmentID.flatMap { catalog.lookUp($0) }
        var chosen = fromData
        var warning: String? = nil
        if let configured {
            let named: EnvironmentEntry
            do {
                named = try catalog.entry(configured)
            } catch {
                throw TrainingError.badConfiguration(file: source, problem: "environment: \(error)")
            }
            chosen = named
            if let fromData, fromData.name != named.name {
                if sameTask(fromData, named), !namesVersion(configured) {
                    chosen = fromData
                    warning =
                        "the data (\(files)) was recorded in \(fromData.id), so the run is evaluated there, not in \(named.id); name \(named.id) in the configuration to evaluate there instead"
                } else {
                    warning =
                        "the data (\(files)) names \(fromData.id), but the run is evaluated in \(named.id), as the configuration says"
                }
            }
        }
        guard let chosen else { return (nil, warning) }
        do {
            try chosen.checkWidths(
                observationWidth: dataset.observationDimension, actionWidth: dataset.actionDimension,
                of: "the data (\(files))")
        } catch {
            if let configured {
                throw TrainingError.mismatch(
                    "\(source) names environment \(configured): \(error): use a configuration made for this data's environment")
            }
            // The environment comes from the files' metadata: a mislabelled file must not be
            // scored (or evaluated) as another environment.
            throw TrainingError.mismatch(
                "the metadata of \(files) names environment \(chosen.id), but \(error): the data is mislabelled. Set environment in the configuration (--environment) to the one the data came from"
            )
        }
        return (chosen, warning)
    }

    /// Whether a checkpoint that records `stored` may belong to a run configured with
    /// `configured`, by `resolve`'s rule (the data is not at hand: a task named without a
    /// version accepts any version of it).
    static func agrees(configured: String, stored: String, catalog: EnvironmentCatalog = .standard) -> Bool {
        guard let named = catalog.lookUp(configured), let recorded = catalog.lookUp(stored) else {
            return configured == stored
        }
        return named.name == recorded.name || !namesVersion(configured) && sameTask(named, recorded)
    }

    /// Whether two entries are versions of one task (`Walker2d-v4` and `Walker2d-v5`).
    static func sameTask(_ a: EnvironmentEntry, _ b: EnvironmentEntry) -> Bool { a.task.lowercased() == b.task.lowercased() }

    /// Whether `name` carries a version (`Hopper-v4`, `hopper-v5`), rather than naming the task.
    static func namesVersion(_ name: String) -> Bool { EnvironmentEntry.version(in: name) != nil }
}
