#!/usr/bin/env bash
# The whole test suite: installs missing system packages, then runs every test.
# Tests read ../shared (fixtures and datasets) beside the clone, or $DECISIONFLOW_SHARED.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
# Release mode: the allocation test checks optimized code, and the training tests run faster.
# Swift Testing only: the XCTest runner would add a second summary line that counts zero tests.
exec swift test -c release --disable-xctest "$@"
