// swift-tools-version: 6.0
//
// A package of its own that depends on DecisionFlow by path, as any other Swift package would
// depend on it by URL and version: it records a dataset in its own environment, trains a
// Decision-Flowformer on it and evaluates the policy in the same environment, through the
// libraries' public API only. CI builds and runs it (scripts/test.sh).
import PackageDescription

let package = Package(
    name: "CustomEnvironment",
    dependencies: [
        .package(name: "DecisionFlow", path: "../..")
    ],
    targets: [
        .executableTarget(
            name: "CustomEnvironment",
            dependencies: [
                .product(name: "RLData", package: "DecisionFlow"),
                .product(name: "DecisionFlow", package: "DecisionFlow"),
                .product(name: "DecisionFlowCheckpoints", package: "DecisionFlow"),
                .product(name: "RLEnvironments", package: "DecisionFlow"),
                .product(name: "DecisionFlowTraining", package: "DecisionFlow"),
                .product(name: "DecisionFlowEvaluation", package: "DecisionFlow"),
            ]
        )
    ]
)
