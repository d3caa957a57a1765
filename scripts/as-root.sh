# Sourced by the install scripts. `need_root WHAT` sets the array `sudo` to the prefix that
# runs a command as root: empty for root, (sudo) when sudo exists; otherwise it stops with
# "need root (or sudo) to WHAT".
need_root() {
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "error: need root (or sudo) to $1" >&2
        exit 1
    fi
}
