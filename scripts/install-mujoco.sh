#!/usr/bin/env bash
# Installs MuJoCo 4.0.1, the official build, for CMuJoCo to build against, only if it is
# missing. Debian packages only MuJoCo 2.2.2, whose contact response differs from the engine
# the datasets were recorded on (FACTS.md), so the library comes from PyPI instead:
#   1. `pip download` fetches the `mujoco-core` 4.0.1 wheel for this machine's architecture
#      without installing it (the `mujoco` package on PyPI is a pure-Python wrapper that
#      depends on `mujoco-core`, which carries libmujoco.so.4.0.1 and the C headers);
#   2. its SHA-256 is checked against the one pinned below;
#   3. libmujoco.so.4.0.1 and include/mujoco/*.h go under $DECISIONFLOW_MUJOCO_PREFIX
#      (default /opt/decisionflow/mujoco-4.0.1), with a pkg-config file, mujoco.pc, linked
#      from /usr/local/lib/pkgconfig (where SwiftPM and pkg-config look) and the library
#      directory registered with the dynamic linker (/etc/ld.so.conf.d, ldconfig).
# Called by install-system-packages.sh, after Debian's packages (python3-pip among them).
set -euo pipefail

version=4.0.1
prefix="${DECISIONFLOW_MUJOCO_PREFIX:-/opt/decisionflow/mujoco-$version}"
pc_link=/usr/local/lib/pkgconfig/mujoco.pc
ld_conf=/etc/ld.so.conf.d/decisionflow-mujoco.conf

# Already there: the pkg-config file pkg-config finds is this prefix's, of this version, and
# the dynamic linker resolves the soname into this prefix (another prefix installed since,
# or removed, does not count).
if [ "$(pkg-config --modversion mujoco 2>/dev/null || true)" = "$version" ] \
    && [ "$(pkg-config --variable=prefix mujoco 2>/dev/null || true)" = "$prefix" ] \
    && [ -f "$prefix/lib/libmujoco.so.$version" ] \
    && ldconfig -p 2>/dev/null | grep -qF "=> $prefix/lib/libmujoco.so.$version"; then
    exit 0
fi

case "$(uname -m)" in
    x86_64)
        platform=manylinux_2_28_x86_64
        wheel=mujoco_core-4.0.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
        sha256=be28c0c7587347ef996b4de0487264e9da296282082b092bae211a9163e9aed6
        ;;
    aarch64)
        platform=manylinux_2_28_aarch64
        wheel=mujoco_core-4.0.1-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl
        sha256=52d934614a56f7d75dcfc2bd8bb72f058b465ecc19a0583a56df242f9505bdb6
        ;;
    *)
        echo "error: MuJoCo $version's official build exists for x86_64 and aarch64 Linux only; this machine is $(uname -m)." >&2
        echo "Build MuJoCo $version from source, install it with a pkg-config file named mujoco.pc, and run this again." >&2
        exit 1
        ;;
esac

source "$(dirname "$0")/as-root.sh"
need_root "install MuJoCo $version under $prefix and register it in $pc_link and $ld_conf"

# The first Python with pip: the one on PATH, else Debian's (python3-pip installs there).
python=
for candidate in "$(command -v python3 || true)" /usr/bin/python3; do
    if [ -n "$candidate" ] && "$candidate" -m pip --version >/dev/null 2>&1; then
        python=$candidate
        break
    fi
done
if [ -z "$python" ]; then
    echo "error: MuJoCo $version comes from PyPI through pip, and this machine has no pip." >&2
    echo "Install it (Debian: apt-get install python3-pip) and run this again." >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "installing MuJoCo $version (the official build, from PyPI's mujoco-core wheel) under $prefix" >&2
# The wheel's Python tag does not matter (only the C library and headers are taken), so one
# fixed tag makes every machine fetch the same file, whose hash is pinned above.
if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: --platform "$platform" \
    --python-version 3.11 --implementation cp --abi cp311 --dest "$work" "mujoco-core==$version" >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    echo "error: pip could not download mujoco-core==$version from the package registry (PyPI)." >&2
    echo "Check that https://pypi.org is reachable (or that pip's index points to a mirror), and run this again." >&2
    exit 1
fi
if [ ! -f "$work/$wheel" ]; then
    echo "error: pip downloaded $(ls "$work" | grep -v pip.log | tr '\n' ' ')but not $wheel; its index may not be PyPI." >&2
    exit 1
fi
actual=$(sha256sum "$work/$wheel" | cut -d' ' -f1)
if [ "$actual" != "$sha256" ]; then
    echo "error: $wheel has SHA-256 $actual, not the $sha256 pinned in scripts/install-mujoco.sh; not installing it." >&2
    echo "The registry served another file under this name: check pip's index (a mirror?) and run this again." >&2
    exit 1
fi

# Unpack only what the C API needs; Python's zipfile, since pip brought Python anyway.
"$python" - "$work/$wheel" "$work/unpacked" "mujoco/libmujoco.so.$version" <<'PYTHON'
import sys, zipfile
wheel, out, library = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as archive:
    wanted = [name for name in archive.namelist()
              if name == library
              or (name.startswith("mujoco/include/mujoco/") and name.endswith(".h"))]
    if library not in wanted or not any(n.endswith("/mujoco.h") for n in wanted):
        sys.exit(f"error: the wheel has no {library} or no mujoco/include/mujoco/mujoco.h")
    for name in wanted:
        archive.extract(name, out)
PYTHON

staged="$work/prefix"
mkdir -p "$staged/lib/pkgconfig" "$staged/include"
cp "$work/unpacked/mujoco/libmujoco.so.$version" "$staged/lib/"
ln -s "libmujoco.so.$version" "$staged/lib/libmujoco.so"
cp -r "$work/unpacked/mujoco/include/mujoco" "$staged/include/"
cat >"$staged/lib/pkgconfig/mujoco.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: MuJoCo
Description: Multi-Joint dynamics with Contact (the official build, from PyPI's mujoco-core $version wheel)
Version: $version
Libs: -L\${libdir} -lmujoco
Cflags: -I\${includedir}
EOF

# Replace the prefix as a whole: a failed copy leaves the old one in place.
"${sudo[@]}" mkdir -p "$(dirname "$prefix")" /usr/local/lib/pkgconfig /etc/ld.so.conf.d
"${sudo[@]}" rm -rf "$prefix.new"
"${sudo[@]}" cp -r "$staged" "$prefix.new"
"${sudo[@]}" rm -rf "$prefix"
"${sudo[@]}" mv "$prefix.new" "$prefix"
"${sudo[@]}" ln -sfn "$prefix/lib/pkgconfig/mujoco.pc" "$pc_link"
echo "$prefix/lib" | "${sudo[@]}" tee "$ld_conf" >/dev/null
"${sudo[@]}" ldconfig
echo "MuJoCo $version installed: $prefix (pkg-config: $pc_link)" >&2
