// swift-tools-version: 6.0
//
// DecisionFlow: offline reinforcement learning in Swift.
//
// Modules, one job each, bottom to top (acyclic; each depends only on modules above it in
// this list, and the executable is the only place where everything meets):
//
//   DecisionFlowSupport      general helpers: atomic files, file-failure sentences, checksum,
//                            stable JSON, overflow-checked sizes, the machine's memory.
//                            Depends on nothing.
//   SeededRandom             the seeded generator of the model and the environments
//   RLData                   D4RL and Minari datasets over libhdf5 (CHDF5)
//   DecisionFlow             the model's arithmetic (OpenBLAS), optimizer and acting; no files
//   DecisionFlowCheckpoints  a model's files: checkpoints, safetensors, PyTorch state dicts
//   RLEnvironments           environments: MuJoCo (CMuJoCo) and pure Swift, and the catalog
//                            that says which one an id means (with RLData's D4RL scores)
//   ProcessGroups            the process-group protocol and the group of one. Depends on nothing.
//   DecisionFlowMPI          the group mpirun starts (CMPI); depends on ProcessGroups only
//   DecisionFlowTraining     a run: data to windows, the trainer, run directories, resume
//   DecisionFlowEvaluation   the evaluation protocol: rollouts, targets, scores, reports, and
//                            replays of datasets in their simulators
//   DecisionFlowExperiments  above training and evaluation: sweeps, tables, plots, TensorBoard
//   d4rl-run                 the tool: parses, calls the libraries above, prints
//
import PackageDescription

let package = Package(
    name: "DecisionFlow",
    products: [
        .library(name: "RLData", targets: ["RLData"]),
        .library(name: "DecisionFlow", targets: ["DecisionFlow"]),
        .library(name: "DecisionFlowCheckpoints", targets: ["DecisionFlowCheckpoints"]),
        .library(name: "DecisionFlowSupport", targets: ["DecisionFlowSupport"]),
        .library(name: "RLEnvironments", targets: ["RLEnvironments"]),
        .library(name: "DecisionFlowTraining", targets: ["DecisionFlowTraining"]),
        .library(name: "DecisionFlowEvaluation", targets: ["DecisionFlowEvaluation"]),
        .library(name: "DecisionFlowExperiments", targets: ["DecisionFlowExperiments"]),
        .library(name: "DecisionFlowMPI", targets: ["DecisionFlowMPI"]),
        .library(name: "ProcessGroups", targets: ["ProcessGroups"]),
        .executable(name: "d4rl-run", targets: ["d4rl-run"]),
        // Reads an HDF5 file in a child process for `FileProbe`, for programs that open
        // files from strangers.
        .executable(name: "decisionflow-probe", targets: ["decisionflow-probe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        // `swift package generate-documentation` (scripts/docs.sh) builds the DocC catalogs.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // System libraries from Debian packages. Each is a module map plus a shim header.
        .systemLibrary(
            name: "CHDF5",
            pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]
        ),
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Open MPI, for data-parallel training across processes and machines.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),

        // General helpers every module may use: atomic writes, sentences for file failures, a
        // checksum, stable JSON, overflow-checked sizes, the machine's memory.
        .target(name: "DecisionFlowSupport"),

        // The seeded random generator shared by the model and the environments.
        .target(name: "SeededRandom", dependencies: [.product(name: "RealModule", package: "swift-numerics")]),

        // Environments for rollouts: pure-Swift tasks, and MuJoCo locomotion.
        // MuJoCo 4.0.1's official build, installed from PyPI by scripts/install-mujoco.sh
        // (Debian packages only 2.2.2, whose contacts differ from the datasets' engine).
        .systemLibrary(name: "CMuJoCo", pkgConfig: "mujoco"),
        .target(
            name: "RLEnvironments",
            dependencies: [
                "CMuJoCo", "RLData", "DecisionFlowSupport", "SeededRandom",
                .product(name: "RealModule", package: "swift-numerics"),
            ],
            resources: [.copy("Models")]
        ),

        // Reading and writing D4RL-schema HDF5 files.
        .target(name: "RLData", dependencies: ["CHDF5", "DecisionFlowSupport"]),


        // The Decision Transformer / Decision-Flowformer model: its arithmetic, optimizer and acting.
        .target(
            name: "DecisionFlow",
            dependencies: [
                "CBLAS", "DecisionFlowSupport", "SeededRandom", .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),

        // A model's files: DecisionFlow checkpoints, safetensors, the reference's state dicts.
        .target(name: "DecisionFlowCheckpoints", dependencies: ["DecisionFlow", "DecisionFlowSupport"]),

        // The processes that train one model together: the protocol and the group of one.
        .target(name: "ProcessGroups"),

        // Training: windows from D4RL data into the model, run directories, logs, resume.
        .target(
            name: "DecisionFlowTraining",
            dependencies: [
                "RLData", "RLEnvironments", "DecisionFlow", "DecisionFlowCheckpoints", "DecisionFlowSupport",
                "ProcessGroups",
            ]),

        // Data parallelism over Open MPI: the ProcessGroup mpirun starts.
        .target(name: "DecisionFlowMPI", dependencies: ["CMPI", "ProcessGroups"]),

        // Evaluation: rollouts and normalized scores, and replaying datasets in the simulators.
        .target(
            name: "DecisionFlowEvaluation",
            dependencies: ["RLData", "RLEnvironments", "DecisionFlow", "DecisionFlowCheckpoints", "ProcessGroups"]),

        // Experiments: sweeps of runs, results tables and plots, TensorBoard files, and
        // evaluation while training; built on training and evaluation.
        .target(
            name: "DecisionFlowExperiments",
            dependencies: [
                "DecisionFlowTraining", "DecisionFlowEvaluation", "DecisionFlowCheckpoints", "DecisionFlow", "DecisionFlowSupport",
                "RLData", "RLEnvironments", "ProcessGroups",
            ]
        ),

        // The child process of `FileProbe`: reads one HDF5 file completely.
        .executableTarget(name: "decisionflow-probe", dependencies: ["RLData"]),

        // The command-line tool.
        .executableTarget(
            name: "d4rl-run",
            dependencies: [
                "RLData",
                "DecisionFlow",
                "DecisionFlowCheckpoints",
                "DecisionFlowSupport",
                "DecisionFlowTraining",
                "RLEnvironments",
                "CMuJoCo",  // bench envs times bare mj_step calls
                "CBLAS",  // bench model compares with cblas_sgemm
                "DecisionFlowEvaluation",
                "DecisionFlowExperiments",
                "DecisionFlowMPI",
                "ProcessGroups",
                "SeededRandom",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The embedding story in one page: a trained policy inside a Swift simulation loop.
        .executableTarget(
            name: "EmbeddedPolicy", dependencies: ["DecisionFlow", "DecisionFlowCheckpoints", "RLEnvironments"], path: "Examples/EmbeddedPolicy"),
        // The same for many agents: one policy, one call a step for a crowd of simulated bodies.
        .executableTarget(
            name: "CrowdPolicy", dependencies: ["DecisionFlow", "DecisionFlowCheckpoints", "RLEnvironments"], path: "Examples/CrowdPolicy"),

        .testTarget(name: "CSmokeTests", dependencies: ["CHDF5", "CBLAS"]),
        .testTarget(name: "RLDataTests", dependencies: ["RLData", "CHDF5", "TestSupport", "decisionflow-probe"]),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "d4rl-run", "EmbeddedPolicy", "CrowdPolicy", "DecisionFlowTraining", "DecisionFlowEvaluation", "DecisionFlowExperiments",
                "DecisionFlowSupport", "DecisionFlowMPI", "ProcessGroups",
                "RLData", "RLEnvironments", "DecisionFlow", "DecisionFlowCheckpoints", "TestSupport",
                "HuggingFaceTestSupport",
            ]
        ),
        .target(name: "MallocCounter", path: "Tests/Support/MallocCounter"),
        // The one numeric comparison every test uses: NaN, infinity and count aware.
        .target(name: "TestSupport", path: "Tests/Support/TestSupport"),
        // Hub folders made from the shared Hugging Face fixtures, for the import tests.
        .target(
            name: "HuggingFaceTestSupport", dependencies: ["DecisionFlowCheckpoints", "TestSupport"],
            path: "Tests/Support/HuggingFaceTestSupport"),
        // The small datasets and configurations the training and experiment tests share.
        .target(
            name: "TrainingTestSupport", dependencies: ["DecisionFlowTraining", "RLData"],
            path: "Tests/Support/TrainingTestSupport"),
        .testTarget(name: "RLEnvironmentsTests", dependencies: ["RLEnvironments", "TestSupport", "MallocCounter"]),
        .testTarget(name: "DecisionFlowSupportTests", dependencies: ["DecisionFlowSupport", "TestSupport"]),
        .testTarget(
            name: "DecisionFlowEvaluationTests",
            dependencies: [
                "DecisionFlowEvaluation", "RLEnvironments", "RLData", "DecisionFlow", "DecisionFlowCheckpoints", "DecisionFlowTraining",
                "TestSupport",
            ]
        ),
        .testTarget(
            name: "DecisionFlowExperimentsTests",
            dependencies: [
                "DecisionFlowExperiments", "DecisionFlowTraining", "DecisionFlowEvaluation", "RLData", "TestSupport",
                "TrainingTestSupport",
            ]
        ),
        .testTarget(
            name: "DecisionFlowTrainingTests",
            dependencies: [
                "DecisionFlowTraining", "RLData", "RLEnvironments", "DecisionFlow", "DecisionFlowCheckpoints",
                "DecisionFlowSupport", "ProcessGroups", "TestSupport", "TrainingTestSupport",
            ]
        ),
        .testTarget(
            name: "DecisionFlowTests",
            dependencies: [
                "DecisionFlow", "DecisionFlowCheckpoints", "DecisionFlowSupport", "MallocCounter", "TestSupport",
                "HuggingFaceTestSupport", .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
    ]
)
