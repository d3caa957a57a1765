#!/usr/bin/env bash
# The main job: installs missing system packages, builds d4rl-run in release mode, trains the
# demo preset (configs/demo.json) on the bundled dataset, then rolls the policy out in the
# MuJoCo Hopper and prints its D4RL normalized return. Each call starts a new run under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
swift build -c release --product d4rl-run
out="runs/demo-$(date +%Y%m%d-%H%M%S)"
.build/release/d4rl-run inspect data/hopper-medium-replay-tail25k.hdf5 | tail -n 7
.build/release/d4rl-run train --config configs/demo.json --out "$out"
.build/release/d4rl-run plot "$out" --output "$out/learning-curves.svg"
.build/release/d4rl-run evaluate --checkpoint "$out/checkpoint.safetensors" --episodes 10
