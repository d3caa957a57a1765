#!/usr/bin/env bash
# The main job, on the bundled default dataset: installs missing system packages, builds
# d4rl-run in release mode and runs it. (Training and evaluation join this as they land.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
swift build -c release --product d4rl-run
.build/release/d4rl-run inspect data/hopper-medium-replay-tail25k.hdf5
