#!/usr/bin/env bash
# The whole test suite: installs missing system packages, runs every test, builds and runs
# the example package (Examples/CustomEnvironment, which depends on this one by path), builds
# the DocC documentation with warnings as errors and checks every public symbol is documented,
# then fuzzes the file readers for about 30 seconds each.
# Tests read ../shared (fixtures and datasets) beside the clone, or $DECISIONFLOW_SHARED.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
# Release mode: the allocation test checks optimized code, and the training tests run faster.
# Swift Testing only: the XCTest runner would add a second summary line that counts zero tests.
swift test -c release --disable-xctest "$@"
# Then libFuzzer on each reader of untrusted files, about 30 seconds each: a fixed number of
# inputs from a fixed seed, so every machine runs the same inputs (skipped when the tests
# were filtered with arguments). `bash scripts/fuzz.sh 600` is the long, random run.
if [ $# -eq 0 ]; then
    echo "example package: Examples/CustomEnvironment"
    swift run -c release --package-path Examples/CustomEnvironment CustomEnvironment
    bash scripts/docs.sh
    FUZZ_RUNS=20000 bash scripts/fuzz.sh 0 FuzzSafetensors
    FUZZ_RUNS=2500 bash scripts/fuzz.sh 0 FuzzD4RLSchema
fi
