#!/usr/bin/env bash
# Fuzzes DecisionFlow's readers of untrusted files with libFuzzer:
#   FuzzSafetensors  safetensors files and checkpoints (Safetensors.parse, Checkpoint.parse)
#   FuzzD4RLSchema   D4RL files as in-memory HDF5 images (libhdf5, then every schema check)
# Usage: bash scripts/fuzz.sh [SECONDS per target, default 30] [TARGET ...]
# Each target starts from the committed seed corpus in Fuzz/Corpus (copied, so the committed
# one stays small) and fails the script on any crash, sanitizer report, leak or timeout; the
# input that did it is left in Fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(FuzzSafetensors FuzzD4RLSchema)
(cd Fuzz && swift build -c release --sanitize=fuzzer)
mkdir -p Fuzz/artifacts
for target in "${targets[@]}"; do
    case "$target" in
        FuzzSafetensors) seeds=Fuzz/Corpus/safetensors ;;
        FuzzD4RLSchema) seeds=Fuzz/Corpus/d4rl ;;
        *) echo "unknown target $target (FuzzSafetensors, FuzzD4RLSchema)" >&2; exit 64 ;;
    esac
    corpus="$(mktemp -d)"
    cp "$seeds"/* "$corpus"/
    echo "fuzzing $target for $seconds s (seeds: $seeds)"
    # -timeout: one input may take at most 10 s; -rss_limit_mb: at most 2 GiB.
    set +e
    Fuzz/.build/release/"$target" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=262144 -artifact_prefix=Fuzz/artifacts/"$target"- -print_final_stats=1 >"$corpus.log" 2>&1
    status=$?
    set -e
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY)|ERROR|deadly|Test unit written" \
        "$corpus.log" || true
    rm -f "$corpus.log"
    rm -rf "$corpus"
    if [ "$status" -ne 0 ]; then
        echo "$target failed (status $status); the input is in Fuzz/artifacts/" >&2
        exit 1
    fi
done
