#!/usr/bin/env bash
# Checks that a restructuring changed no number: trains the same short runs with two builds of
# d4rl-run (flow and softmax with one process, flow under `mpirun -np 2`, and a flow run
# stopped at step 30 and resumed with a new learning rate and log interval) and compares
# their checkpoints byte for byte, and their config.json and log.jsonl with the timing fields
# (elapsed_seconds, steps_per_second) removed.
#
#   bash scripts/same-numbers.sh BASE_BINARY [NEW_BINARY]
#
# BASE_BINARY is the previous commit's d4rl-run (build it in a worktree:
#   git worktree add /tmp/base HEAD~1 && swift build -c release --package-path /tmp/base);
# NEW_BINARY defaults to .build/release/d4rl-run. Exit status 0 when every file agrees.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bash scripts/same-numbers.sh BASE_BINARY [NEW_BINARY]}
new=${2:-.build/release/d4rl-run}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
common=(--dataset data/hopper-medium-replay-tail25k.hdf5 --embedding-dimension 32 --layer-count 2 --head-count 2
    --batch-size 16 --context-length 10 --warmup-steps 10 --steps 60 --log-every 10 --checkpoint-every 20
    --evaluate-every 60 --evaluation-episodes 2 --threads 2)
mpirun=(mpirun --allow-run-as-root --oversubscribe -np 2)
failures=0
for attention in flow softmax mpi resume; do
    for build in base new; do
        binary=$base
        [ $build = new ] && binary=$new
        out="$scratch/$attention-$build"
        if [ $attention = mpi ]; then
            "${mpirun[@]}" "$binary" train "${common[@]}" --threads 1 --out "$out" >/dev/null 2>&1
        elif [ $attention = resume ]; then
            "$binary" train "${common[@]/60/30}" --out "$out" >/dev/null 2>&1
            "$binary" train --resume "$out" --steps 60 --learning-rate 5e-4 --log-every 5 >/dev/null 2>&1
        else
            "$binary" train "${common[@]}" --attention $attention --out "$out" >/dev/null 2>&1
        fi
        # Timing differs between any two runs; everything else must not.
        sed -E 's/"elapsed_seconds":[^,}]*,?//; s/"steps_per_second":[^,}]*,?//' "$out/log.jsonl" >"$out/log.numbers"
    done
    for file in checkpoint.safetensors config.json log.numbers; do
        if cmp -s "$scratch/$attention-base/$file" "$scratch/$attention-new/$file"; then
            echo "same       $attention $file"
        else
            echo "DIFFERENT  $attention $file"
            # Which log fields differ, so a deliberate change can be told from a broken one.
            if [ $file = log.numbers ]; then
                diff <(tr ',' '\n' <"$scratch/$attention-base/$file") <(tr ',' '\n' <"$scratch/$attention-new/$file") |
                    grep '^[<>]' | sed 's/^/           /' | head -6 || true
            fi
            failures=$((failures + 1))
        fi
    done
done
[ $failures -eq 0 ] && echo "every file agrees" || { echo "$failures files differ"; exit 1; }
