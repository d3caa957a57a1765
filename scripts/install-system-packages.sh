#!/usr/bin/env bash
# Installs the Debian packages DecisionFlow builds against, only if one is missing:
# libhdf5-dev (HDF5), libopenblas-dev (BLAS), libmujoco-dev (physics), libopenmpi-dev and
# openmpi-bin (data parallelism with mpirun), pkg-config.
set -euo pipefail

packages=(libhdf5-dev libopenblas-dev libmujoco-dev libopenmpi-dev openmpi-bin pkg-config)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing missing system packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "error: need root (or sudo) to run: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
