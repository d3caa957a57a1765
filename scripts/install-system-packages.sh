#!/usr/bin/env bash
# Installs the Debian packages DecisionFlow builds against, only if one is missing:
# libhdf5-dev (HDF5), libopenblas-dev (BLAS), libopenmpi-dev and openmpi-bin (data
# parallelism with mpirun), pkg-config, and python3-pip, with which install-mujoco.sh then
# fetches MuJoCo 4.0.1's official build from PyPI (Debian packages only MuJoCo 2.2.2).
set -euo pipefail

packages=(libhdf5-dev libopenblas-dev libopenmpi-dev openmpi-bin pkg-config python3-pip)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing missing system packages: ${missing[*]}" >&2
    source "$(dirname "$0")/as-root.sh"
    need_root "run: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash "$(dirname "$0")/install-mujoco.sh"

