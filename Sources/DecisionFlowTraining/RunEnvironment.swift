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
    /// The environment for `dataset` under a configuration that names `configured`, and
    /// anything worth a warning.
    ///
    /// - Throws: `TrainingError.badConfiguration` for a configured name the catalog does not
    ///   know (with its close matches), `TrainingError.mismatch` when the files name
    ///   different environments or the widths disagree (naming where the environment came from).
    static func resolve(
        configured: String?, dataset: D4RLDataset, source: String, catalog: EnvironmentCatalog = .standard
    ) throws -> (entry: EnvironmentEntry?, warning: String?) {
        let files = dataset.files.joined(separator: ", ")
        // Every file's own id: concatenated files must not mix environments or versions.
        let namedByFiles = zip(dataset.files, dataset.environmentIDs).compactMap { file, id in id.map { (file, $0) } }
        let known = namedByFiles.compactMap { file, id in catalog.lookUp(id).map { (file, $0) } }
        if let first = known.first, let other = known.first(where: { $0.1.name != first.1.name }) {
            throw TrainingError.mismatch(
                "\(first.0) names environment \(first.1.id) but \(other.0) names \(other.1.id): train on one environment's data at a time")
        }
        let fromData = known.first?.1
        var notes: [String] = []
        if fromData == nil, let (file, id) = namedByFiles.first {
            notes.append(
                "\(file) names environment '\(id)', which the catalog does not know"
                    + (configured == nil ? ": the run has no environment to be scored or evaluated in; set environment" : ""))
        }
        var chosen = fromData
        if let configured {
            let named: EnvironmentEntry
            do {
                named = try catalog.entry(configured)
                chosen = try catalog.entry(configured, recordedIn: fromData)
            } catch {
                throw TrainingError.badConfiguration(file: source, problem: "environment: \(error)")
            }
            if let fromData, chosen?.name == fromData.name, fromData.name != named.name {
                notes.append(
                    "the data (\(files)) was recorded in \(fromData.id), so the run is evaluated there, not in \(named.id); name \(named.id) in the configuration to evaluate there instead")
            } else if let fromData, fromData.name != named.name {
                notes.append(
                    "the data (\(files)) names \(fromData.id), but the run is evaluated in \(named.id), as the configuration says")
            }
        }
        let warning = notes.isEmpty ? nil : notes.joined(separator: "; ")
        guard let chosen else { return (nil, warning) }
        do {
            try chosen.checkWidths(
                observationWidth: dataset.observationDimension, actionWidth: dataset.actionDimension,
                of: "the data (\(files))")
        } catch {
            if let configured, chosen.name != fromData?.name {
                throw TrainingError.mismatch(
                    "\(source) names environment \(configured): \(error): use a configuration made for this data's environment")
            }
            // The environment came from the files' metadata: a mislabelled file must not be
            // scored (or evaluated) as another environment.
            throw TrainingError.mismatch(
                "the metadata of \(files) names environment \(chosen.id), but \(error): the data is mislabelled. Set environment in the configuration (--environment) to the one the data came from, with its version (`d4rl-run environments` lists them)"
            )
        }
        return (chosen, warning)
    }

    /// Whether a checkpoint that records `stored` may belong to a run configured with
    /// `configured`, by `resolve`'s rule (the data is not at hand: a task named without a
    /// version accepts any version of it).
    static func agrees(configured: String, stored: String, catalog: EnvironmentCatalog = .standard) -> Bool {
        guard let recorded = catalog.lookUp(stored), let named = try? catalog.entry(configured, recordedIn: recorded) else {
            return configured == stored
        }
        return named.name == recorded.name
    }
}
