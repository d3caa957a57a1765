// swift-tools-version: 6.0
//
// DecisionFlow: offline reinforcement learning in Swift.
//
// Dependency graph (acyclic; the executable is the only place where everything meets):
//
//   CHDF5  <- RLData -------+--> DecisionFlowTraining --> d4rl-run
//   CBLAS  <- DecisionFlow -/          |                 /
//   ProcessGroups ------------------/                   /
//   CMPI, ProcessGroups ---------> DecisionFlowMPI ----/
//   SeededRandom <- RLEnvironments ----------------------/
//   (DecisionFlow also uses SeededRandom; DecisionFlowEvaluation uses RLData,
//   RLEnvironments and DecisionFlow; decisionflow-probe uses RLData)
//
import PackageDescription

let package = Package(
    name: "DecisionFlow",
    products: [
        .library(name: "RLData", targets: ["RLData"]),
        .library(name: "DecisionFlow", targets: ["DecisionFlow"]),
        .library(name: "RLEnvironments", targets: ["RLEnvironments"]),
        .library(name: "DecisionFlowTraining", targets: ["DecisionFlowTraining"]),
        .library(name: "DecisionFlowEvaluation", targets: ["DecisionFlowEvaluation"]),
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

        // The seeded random generator shared by the model and the environments.
        .target(name: "SeededRandom", dependencies: [.product(name: "RealModule", package: "swift-numerics")]),

        // Environments for rollouts: pure-Swift tasks, and MuJoCo locomotion.
        .systemLibrary(name: "CMuJoCo", providers: [.apt(["libmujoco-dev"])]),
        .target(
            name: "RLEnvironments",
            dependencies: ["CMuJoCo", "SeededRandom", .product(name: "RealModule", package: "swift-numerics")],
            resources: [.copy("Models")]
        ),

        // Reading and writing D4RL-schema HDF5 files.
        .target(name: "RLData", dependencies: ["CHDF5"]),

        // The Decision Transformer / Decision-Flowformer model.
        .target(
            name: "DecisionFlow",
            dependencies: ["CBLAS", "SeededRandom", .product(name: "RealModule", package: "swift-numerics")]
        ),

        // The processes that train one model together: the protocol and the group of one.
        .target(name: "ProcessGroups"),

        // Training: windows from D4RL data into the model, run directories, logs, resume.
        .target(name: "DecisionFlowTraining", dependencies: ["RLData", "DecisionFlow", "ProcessGroups"]),

        // Data parallelism over Open MPI: the ProcessGroup mpirun starts.
        .target(name: "DecisionFlowMPI", dependencies: ["CMPI", "ProcessGroups"]),

        // Evaluation: rollouts and normalized scores, and replaying datasets in the simulators.
        .target(
            name: "DecisionFlowEvaluation", dependencies: ["RLData", "RLEnvironments", "DecisionFlow", "ProcessGroups"]),

        // The child process of `FileProbe`: reads one HDF5 file completely.
        .executableTarget(name: "decisionflow-probe", dependencies: ["RLData"]),

        // The command-line tool.
        .executableTarget(
            name: "d4rl-run",
            dependencies: [
                "RLData",
                "DecisionFlow",
                "DecisionFlowTraining",
                "RLEnvironments",
                "CMuJoCo",  // bench envs times bare mj_step calls
                "DecisionFlowEvaluation",
                "DecisionFlowMPI",
                "ProcessGroups",
                "SeededRandom",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The embedding story in one page: a trained policy inside a Swift simulation loop.
        .executableTarget(
            name: "EmbeddedPolicy", dependencies: ["DecisionFlow", "RLEnvironments"], path: "Examples/EmbeddedPolicy"),

        .testTarget(name: "CSmokeTests", dependencies: ["CHDF5", "CBLAS"]),
        .testTarget(name: "RLDataTests", dependencies: ["RLData", "CHDF5", "TestSupport", "decisionflow-probe"]),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "d4rl-run", "EmbeddedPolicy", "DecisionFlowTraining", "DecisionFlowEvaluation", "DecisionFlowMPI", "ProcessGroups",
                "RLData", "RLEnvironments", "DecisionFlow", "TestSupport",
            ]
        ),
        .target(name: "MallocCounter", path: "Tests/Support/MallocCounter"),
        // The one numeric comparison every test uses: NaN, infinity and count aware.
        .target(name: "TestSupport", path: "Tests/Support/TestSupport"),
        .testTarget(name: "RLEnvironmentsTests", dependencies: ["RLEnvironments", "TestSupport"]),
        .testTarget(
            name: "DecisionFlowEvaluationTests",
            dependencies: [
                "DecisionFlowEvaluation", "RLEnvironments", "RLData", "DecisionFlow", "DecisionFlowTraining", "TestSupport",
            ]
        ),
        .testTarget(
            name: "DecisionFlowTrainingTests",
            dependencies: ["DecisionFlowTraining", "RLData", "DecisionFlow", "ProcessGroups", "TestSupport"]
        ),
        .testTarget(
            name: "DecisionFlowTests",
            dependencies: [
                "DecisionFlow", "MallocCounter", "TestSupport", .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
    ]
)
