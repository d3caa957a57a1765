#!/usr/bin/env bash
# Fuzzes DecisionFlow's readers of untrusted files with libFuzzer:
#   FuzzSafetensors  safetensors files and checkpoints (Safetensors.parse, Checkpoint.parse)
#   FuzzD4RLSchema   D4RL files as in-memory HDF5 images (libhdf5, then every schema check)
# Usage: bash scripts/fuzz.sh [SECONDS per target, default 30] [TARGET ...]
#        FUZZ_RUNS=N bash scripts/fuzz.sh 0 [TARGET ...]   N inputs each from seed 1: the same
#        inputs on every machine (what the test command runs, so CI does not depend on luck).
# Each target starts from the committed seed corpus in Fuzz/Corpus (copied, so the committed
# one stays small). A crash, sanitizer report, leak, 2 GiB of memory or 10 s on one input fails
# the script, and the input is left in Fuzz/artifacts/.
#
# One exception, reported but not failed: a crash whose first frame outside libc is inside
# libhdf5 itself. Debian bookworm's libhdf5 1.10.8 has memory-safety bugs on forged object
# headers that no caller can prevent; d4rl-run reads every HDF5 file in a child process first
# (FileProbe) so that such a file is refused instead of crashing the tool. Timed runs restart
# the fuzzer after each crash; each crash is then replayed and attributed to libhdf5 or to
# DecisionFlow.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(FuzzSafetensors FuzzD4RLSchema)
(cd Fuzz && swift build -c release --sanitize=fuzzer)
mkdir -p Fuzz/artifacts
failed=0
for target in "${targets[@]}"; do
    case "$target" in
        FuzzSafetensors) seeds=Fuzz/Corpus/safetensors ;;
        FuzzD4RLSchema) seeds=Fuzz/Corpus/d4rl ;;
        *) echo "unknown target $target (FuzzSafetensors, FuzzD4RLSchema)" >&2; exit 64 ;;
    esac
    corpus="$(mktemp -d)"
    cp "$seeds"/* "$corpus"/
    before=$(ls Fuzz/artifacts | wc -l)
    hangs=0
    common=(-timeout=10 -rss_limit_mb=2048 -max_len=262144 -artifact_prefix=Fuzz/artifacts/"$target"- -print_final_stats=1)
    if [ -n "${FUZZ_RUNS:-}" ]; then
        echo "fuzzing $target: $FUZZ_RUNS inputs from seed 1 (seeds: $seeds)"
        set +e
        timeout -k 5 300 Fuzz/.build/release/"$target" "$corpus" -runs="$FUZZ_RUNS" -seed=1 "${common[@]}" >"$corpus.log" 2>&1
        status=$?
        set -e
    else
        # Sessions restarted after each crash until the time is up, each under a hard limit:
        # after libhdf5 corrupts the heap, libFuzzer's own crash report can deadlock in malloc
        # (its fork mode then waits for ever), so a stalled session is killed and counted.
        echo "fuzzing $target for $seconds s (seeds: $seeds)"
        start=$(date +%s)
        status=0
        : >"$corpus.log"
        while true; do
            left=$(( seconds - ($(date +%s) - start) ))
            [ "$left" -le 0 ] && break
            set +e
            timeout -k 5 $(( left + 30 )) Fuzz/.build/release/"$target" "$corpus" -max_total_time="$left" "${common[@]}" \
                >>"$corpus.log" 2>&1
            session=$?
            set -e
            if [ "$session" -eq 0 ]; then break; fi
            if { [ "$session" -eq 124 ] || [ "$session" -eq 137 ]; } && ! tail -5 "$corpus.log" | grep -q "Test unit written"; then
                hangs=$((hangs + 1))
            fi
            status=$session
        done
    fi
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)|ERROR: libFuzzer" "$corpus.log" \
        | sort | uniq -c || true
    rm -rf "$corpus" "$corpus.log"
    # Attribute every crash this run left: inside libhdf5, or ours.
    ours=0
    external=0
    for artifact in $(ls -t Fuzz/artifacts | head -n $(( $(ls Fuzz/artifacts | wc -l) - before ))); do
        path="Fuzz/artifacts/$artifact"
        case "$artifact" in
            *crash-* | *timeout-*)
                # Replayed (a timeout with a 5 s alarm, whose report carries the stack too); the
                # first frame outside libc and libFuzzer says whose code it was.
                frame=$(timeout -k 5 60 Fuzz/.build/release/"$target" -timeout=5 "$path" 2>&1 | grep -E '^ +#[0-9]+ ' \
                    | grep -vE 'libc\.so|sysdeps|memmove|memcpy|memset|compiler-rt|__restore_rt' | head -1 || true)
                # A stack overflow detected by a canary leaves no frames to the sanitizer; gdb,
                # when installed, still finds the function that smashed its stack.
                if [ -z "$frame" ] && command -v gdb >/dev/null; then
                    frame=$(timeout -k 5 60 gdb -batch -ex run -ex "bt 30" --args Fuzz/.build/release/"$target" "$path" 2>/dev/null \
                        | grep -E '^#' | grep -vE 'libc|sysdeps|__GI_|raise|abort|__stack_chk|__fortify|pthread_kill|memcpy|memmove|memset' \
                        | head -1 || true)
                fi
                kind=${artifact%%-*}; kind=${artifact#"$target"-}; kind=${kind%%-*}
                if echo "$frame" | grep -q 'libhdf5'; then
                    external=$((external + 1))
                    echo "  $kind inside libhdf5 (not DecisionFlow's code): $path"
                else
                    ours=$((ours + 1))
                    echo "  $kind in DecisionFlow: $path ($frame)" >&2
                fi ;;
            *) ours=$((ours + 1)); echo "  FAILURE: $path" >&2 ;;
        esac
    done
    echo "  $target: $ours failure(s) in DecisionFlow, $external crash(es) or hang(s) inside libhdf5, $hangs session(s) stalled in libFuzzer's crash report and killed"
    if [ "$ours" -ne 0 ] || { [ "$status" -ne 0 ] && [ "$external" -eq 0 ] && [ "$hangs" -eq 0 ]; }; then
        echo "$target failed (status $status); the inputs are in Fuzz/artifacts/" >&2
        failed=1
    fi
done
exit $failed
