// swift-tools-version: 6.0
//
// libFuzzer targets for DecisionFlow's readers of untrusted files. Build and run them with
// `bash scripts/fuzz.sh` (from the repository root), which passes `--sanitize=fuzzer`.
import PackageDescription

let package = Package(
    name: "DecisionFlowFuzz",
    dependencies: [.package(name: "DecisionFlow", path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzSafetensors", dependencies: [.product(name: "DecisionFlowCheckpoints", package: "DecisionFlow")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(
            name: "FuzzD4RLSchema", dependencies: [.product(name: "RLData", package: "DecisionFlow")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)
