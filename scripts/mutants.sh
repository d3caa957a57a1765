#!/usr/bin/env bash
# The mutation check: does the test suite notice when the code it covers is wrong?
#
# Each mutant is one small fault in a place whose correctness users rely on. The script
# copies the sources to a scratch folder (.build-mutants/src, kept between runs so builds
# are incremental), applies one mutant at a time to that copy, runs the test suite there
# (`swift test -c release`, as scripts/test.sh does), and reports the mutant as
#   killed     some test failed (the failing tests are listed),
#   SURVIVED   every test passed: a missing test; write it, then run the mutant again,
#   INVALID    the mutant no longer applies (its text is not found exactly once) or the
#              mutated code does not compile: update the mutant.
# The working tree is never touched. Exit status: 0 when every mutant was killed.
#
#   bash scripts/mutants.sh                 every mutant (about 2-4 minutes each on 2 cores)
#   bash scripts/mutants.sh adamw clipping  only the named mutants
#   bash scripts/mutants.sh --list          the mutants, one a line
#
# Too slow for the test command: run it by hand, and again after changing the code it covers.
# The report lands in .build-mutants/report.md (the README's table); each mutant's test log
# in .build-mutants/logs/ID.log.
set -euo pipefail
# The whole script is one block, read before it runs: editing this file during a run is safe.
{
cd "$(dirname "$0")/.."
root=$PWD
scratch=${MUTANTS_DIR:-$root/.build-mutants}
shared=${DECISIONFLOW_SHARED:-$(cd "$root/.." && pwd)/shared}

ids=() files=() occurrences=() searches=() replacements=() descriptions=() killers=()
# mutant ID FILE N/M SEARCH REPLACEMENT DESCRIPTION TEST
#   replaces the N-th (1-based) of the M exact occurrences of SEARCH in FILE with REPLACEMENT;
#   any other count of occurrences makes the mutant INVALID, so it never drifts silently.
#   TEST is the test written to catch this fault; the report says whether it did.
mutant() {
    ids+=("$1") files+=("$2") occurrences+=("$3") searches+=("$4") replacements+=("$5") descriptions+=("$6")
    killers+=("$7")
}

kernels=Sources/DecisionFlow/Kernels
mutant flow-forward $kernels/FlowAttention.swift 1/1 \
    'cache[i * FlowCache.width + FlowCache.sinkIncoming] = n / sinkDot' \
    'cache[i * FlowCache.width + FlowCache.sinkIncoming] = n / sourceDot' \
    "Flow-Attention forward: the incoming flow of a sink divides by the source's dot product" \
    'fastMatchesNaive(D:chunk:)'
mutant flow-forward-nan $kernels/FlowAttention.swift 1/1 \
    'vectorScale(y + i * ldY, beforeAllocation + i * ldB, allocation, count: D)' \
    'vectorScale(y + i * ldY, beforeAllocation + i * ldB, allocation, count: D); if i == L - 1 { y[i * ldY] = .nan }' \
    "Flow-Attention forward: one output element (last position, first channel) is NaN" \
    'forwardBackwardAndOneAdamWStep(name:)'
mutant flow-backward $kernels/FlowAttention.swift 1/1 \
    'dSink[i] = dAllocation * allocation * (1 - allocation)' \
    'dSink[i] = dAllocation * allocation' \
    "Flow-Attention backward: the sigmoid's derivative loses its (1 - a) factor" \
    'fastMatchesNaive(D:chunk:)'
mutant flow-carried-state $kernels/FlowAttention.swift 1/1 \
    'if keepsState { FlowState.positions(st, D: D).pointee += Float(committed) }' \
    'if keepsState { FlowState.positions(st, D: D).pointee += Float(max(committed - 1, 0)) }' \
    "Flow-Attention acting: the carried state counts one position fewer than it folded in" \
    'recurrentActingMatchesFullRecomputationOverAWholeEpisode()'
mutant softmax-mask $kernels/SoftmaxAttention.swift 1/1 \
    'if j > i { row[j] = -1e4 }' \
    'if j > i + 1 { row[j] = -1e4 }' \
    "softmax attention: the causal mask lets each token see the next one" \
    'fastSoftmaxMatchesNaive(L:D:)'
mutant layernorm-backward $kernels/LayerNorm.swift 1/1 \
    'dx[c] += s * (weight[c] * g[c] - dnMean - n * dnDotN)' \
    'dx[c] += s * (weight[c] * g[c] - dnMean)' \
    "LayerNorm backward: the input gradient drops the normalized-input term" \
    'layerNormBackwardMatchesFiniteDifferences(N:C:)'
mutant adamw-bias-correction Sources/DecisionFlow/Optimizer/AdamW.swift 1/1 \
    'let stepSize = learningRate / biasCorrection1' \
    'let stepSize = learningRate' \
    "AdamW: no bias correction of the first moment" \
    'forwardBackwardAndOneAdamWStep(name:)'
mutant clipping Sources/DecisionFlow/Optimizer/AdamW.swift 1/1 \
    'let coefficient = min(maxNorm / (norm + 1e-6), 1)' \
    'let coefficient = min(norm / (maxNorm + 1e-6), 1)' \
    "gradient clipping: the coefficient is inverted" \
    'clippingScalesToTheMaximumNorm()'
mutant returns-to-go Sources/RLData/D4RL/D4RLDataset+Statistics.swift 1/1 \
    'for row in trajectory.rows.reversed() {' \
    'for row in trajectory.rows {' \
    "returns-to-go: summed from the episode's start (return so far) instead of to its end" \
    'returnsToGoMatchAnIndependentSum(discount:)'
mutant state-divisor Sources/RLData/D4RL/D4RLDataset+Statistics.swift 1/1 \
    'std.map { $0 + 1e-6 }' \
    'std.map { $0 }' \
    "state normalization: the divisor is std, not std + 1e-6 (constant features divide by zero)" \
    'aConstantFeatureNormalizesToZero()'
mutant padding-side Sources/DecisionFlow/Policy/ContextEncoding.swift 1/1 \
    'let offset = padding == .right ? 0 : K - length' \
    'let offset = padding == .left ? 0 : K - length' \
    "context encoding: short windows are padded on the wrong side" \
    'windowsMatchAnIndependentComputation(padding:)'
mutant discounted-return-to-go Sources/DecisionFlow/Policy/ContextEncoding.swift 1/1 \
    'return min(max(remaining / Float(discount), -1e30), 1e30)' \
    'return remaining' \
    "acting: the next return-to-go ignores the discount training summed with" \
    'aReplayedEpisodeGivesTheSamplersWindows(padding:discount:)'
mutant timestep-clamp Sources/DecisionFlow/Policy/ContextEncoding.swift 1/1 \
    'Int32(min(step, maxTimestep))' \
    'Int32(min(step, maxTimestep - 1))' \
    "context encoding: timesteps clamp one row before the table's last" \
    'windowsMatchAnIndependentComputation(padding:)'
mutant acting-append-row Sources/DecisionFlow/Policy/ActingPasses.swift 1/1 \
    'actionRow: WindowTokens.decision(steps: 2) - tokens.lowerBound,' \
    'actionRow: WindowTokens.decision(steps: 2) - tokens.lowerBound + 1,' \
    "acting: a growing window's action is read from its action token, not its state token" \
    'everyFixtureThroughTheEngine(name:)'
mutant acting-groups Sources/DecisionFlow/Policy/ActingEngine.swift 1/2 \
    'let agent = appending[done + b]' \
    'let agent = appending[b]' \
    "acting: a pass split into groups computes the first group's agents again in place of the others" \
    'lockstepAgentsEqualOneAgentPolicies(attention:rowLimit:)'
mutant checkpoint-checksum Sources/DecisionFlowCheckpoints/Checkpoint.swift 1/2 \
    'guard metadata["checksum"] == checksum.hex else {' \
    'guard metadata["checksum"] == checksum.hex || current else {' \
    "checkpoints: a current file's checksum is computed but not enforced" \
    'corruptionIsDetected()'
mutant minari-next-observations Sources/RLData/Minari/MinariDatasetLayout.swift 1/1 \
    '_ = target.update(fromContentsOf: rows[width..<((t + 1) * width)])' \
    '_ = target.update(fromContentsOf: rows[0..<(t * width)])' \
    "Minari: next_observations taken from rows 0..<T of the T + 1 observations instead of 1...T" \
    'hopperMediumMatchesTheD4RLFileEpisodeByEpisode()'
mutant mujoco-reward Sources/RLEnvironments/MuJoCoEnvironment.swift 1/1 \
    'return (forwardVelocity + healthyReward(isHealthy: isHealthy) - 1e-3 * controlCost, !isHealthy)' \
    'return (forwardVelocity + healthyReward(isHealthy: isHealthy) - 1e-2 * controlCost, !isHealthy)' \
    "hopper and walker2d: the control cost weighs 0.01 instead of gym's 0.001" \
    'everyFileReplaysAsWellAsInGymnasium(ceiling:)'
mutant mujoco-v5-healthy-reward Sources/RLEnvironments/MuJoCoEnvironment.swift 1/1 \
    'version == .v4 || isHealthy ? 1 : 0' \
    '1' \
    "v5 pays the healthy reward on the step that ends the episode (v4's rule)" \
    'versionsDifferWhereGymnasiumSaysTheyDo()'
mutant ant-contact-cost Sources/RLEnvironments/MuJoCoEnvironment.swift 1/1 \
    '- 0.5 * controlCost - 5e-4 * contactCost' \
    '- 0.5 * controlCost - 5e-3 * contactCost' \
    "Ant: the contact cost weighs 0.005 instead of gymnasium's 0.0005" \
    'everyFileReplaysAsWellAsInGymnasium(ceiling:)'
mutant mujoco-termination Sources/RLEnvironments/MuJoCoEnvironment.swift 1/1 \
    'return bounded && height > 0.7 && angle > -0.2 && angle < 0.2' \
    'return bounded && height > 0.6 && angle > -0.2 && angle < 0.2' \
    "Hopper: healthy down to a height of 0.6 instead of gym's 0.7" \
    'hopperTerminationBounds()'
mutant mpi-gradient-average Sources/DecisionFlowTraining/Trainer.swift 1/1 \
    'let steps = reduction[count]' \
    'let steps = Float(model.lastActionError.steps)' \
    "data parallelism: summed gradients divided by this rank's steps, not the group's" \
    'twoRanksTrainAsOneProcessWithTheSameGlobalBatch()'
mutant window-start Sources/DecisionFlowTraining/WindowSampler.swift 1/1 \
    'let row = Int(generator.next() % UInt64(dataset.count))' \
    'let row = Int(generator.next() % UInt64(dataset.count - 1))' \
    "window sampler: the last row of the data is never a window start" \
    'seededSamplingIsReproducibleAndCoversEveryStart(sampling:)'
mutant catalog-widths Sources/RLEnvironments/EnvironmentCatalog.swift 1/1 \
    'guard observationWidth != self.observationWidth || actionWidth != self.actionWidth else { return }' \
    'guard observationWidth != self.observationWidth else { return }' \
    "environment catalog: a width check that looks at observations only" \
    'widthChecksNameBothSides()'
mutant run-environment-version Sources/DecisionFlowTraining/RunEnvironment.swift 1/1 \
    'if sameTask(fromData, named), !namesVersion(configured) {' \
    'if sameTask(fromData, named), namesVersion(configured) {' \
    "which environment a run is for: a preset's task keeps its own version instead of the data's" \
    'aPresetsTaskGetsTheVersionTheDataWasRecordedIn()'
mutant huggingface-position-row Sources/DecisionFlowCheckpoints/Checkpoint+HuggingFace.swift 1/1 \
    'renamed["embed_ln.bias"] = SafetensorsTensor(shape: [C], values: zip(bias.values, position).map { $0 + $1 })' \
    'renamed["embed_ln.bias"] = SafetensorsTensor(shape: [C], values: bias.values)' \
    "Hugging Face import: encoder.wpe's row 0 is not folded into embed_ln's bias" \
    'importedModelsPredictTransformersActions(name:)'

if [ "${1:-}" = "--list" ]; then
    for i in "${!ids[@]}"; do printf '%-26s %s (caught by %s)\n' "${ids[$i]}" "${descriptions[$i]}" "${killers[$i]}"; done
    exit 0
fi
selected=()
if [ $# -gt 0 ]; then
    for name in "$@"; do
        found=no
        for i in "${!ids[@]}"; do [ "${ids[$i]}" = "$name" ] && selected+=("$i") && found=yes; done
        [ $found = yes ] || { echo "error: no mutant '$name'; see: bash scripts/mutants.sh --list" >&2; exit 64; }
    done
else
    selected=("${!ids[@]}")
fi
[ -d "$shared/fixtures" ] || { echo "error: $shared has no fixtures/; set DECISIONFLOW_SHARED" >&2; exit 66; }

bash scripts/install-system-packages.sh
# The scratch copy: the files git knows (tracked and untracked, not ignored), refreshed from
# the working tree; `shared` beside it, as ../shared is beside a clone.
mkdir -p "$scratch/src" "$scratch/logs"
ln -sfn "$shared" "$scratch/shared"
listed="$scratch/files"
git ls-files -z --cached --others --exclude-standard >"$listed"
while IFS= read -r -d '' file; do
    [ -e "$file" ] || continue
    mkdir -p "$scratch/src/$(dirname "$file")"
    cmp -s "$file" "$scratch/src/$file" || cp -p "$file" "$scratch/src/$file"
done <"$listed"
# Files deleted or renamed in the tree go from the copy too (its .build stays).
(cd "$scratch/src" && find . -path ./.build -prune -o -type f -print0) | while IFS= read -r -d '' copied; do
    grep -qzxF -- "${copied#./}" "$listed" || rm -f "$scratch/src/$copied"
done

# Replaces the N-th exact occurrence of $SEARCH in the file; exit 3 when there are fewer.
apply() {
    SEARCH="$2" REPLACE="$3" N="$4" perl -e '
        my $file = $ARGV[0];
        open(my $in, "<", $file) or die "$file: $!";
        local $/; my $text = <$in>; close $in;
        my ($at, $seen) = (-1, 0);
        while (($at = index($text, $ENV{SEARCH}, $at + 1)) >= 0) { last if ++$seen == $ENV{N}; }
        exit 3 if $at < 0;
        substr($text, $at, length($ENV{SEARCH})) = $ENV{REPLACE};
        open(my $out, ">", $file) or die "$file: $!"; print $out $text; close $out;' "$1"
}

# Counts exact occurrences, so a mutant whose text appears twice is flagged, not guessed.
occurrences_of() {
    SEARCH="$2" perl -e 'local $/; open(my $in, "<", $ARGV[0]) or die; my $t = <$in>;
        my ($n, $at) = (0, -1); $n++ while ($at = index($t, $ENV{SEARCH}, $at + 1)) >= 0; print $n' "$1"
}

report="$scratch/report.md"
{
    echo "| mutant | file | fault | result | killed by |"
    echo "|---|---|---|---|---|"
} >"$report"
survivors=0 invalid=0
for i in "${selected[@]}"; do
    id=${ids[$i]} file=${files[$i]}
    log="$scratch/logs/$id.log"
    echo "== $id: ${descriptions[$i]}"
    count=0
    [ -f "$scratch/src/$file" ] && count=$(occurrences_of "$scratch/src/$file" "${searches[$i]}")
    nth=${occurrences[$i]%/*} expected=${occurrences[$i]#*/}
    result= tests=
    if [ "$count" -ne "$expected" ]; then
        result=INVALID tests="its text appears $count times in $file, not $expected: update the mutant"
    else
        # The copy taken at the start is what every mutant starts from (not the working tree,
        # which may change while this runs).
        cp -p "$scratch/src/$file" "$scratch/pristine"
        apply "$scratch/src/$file" "${searches[$i]}" "${replacements[$i]}" "$nth"
        started=$(date +%s)
        set +e
        (cd "$scratch/src" && DECISIONFLOW_SHARED="$shared" swift test -c release --disable-xctest) >"$log" 2>&1
        status=$?
        set -e
        cp -p "$scratch/pristine" "$scratch/src/$file"  # restore before anything else can fail
        seconds=$(($(date +%s) - started))
        if ! grep -q "Test run started" "$log"; then
            result=INVALID tests="does not compile (see logs/$id.log)"
        elif [ $status -eq 0 ]; then
            result=SURVIVED
        else
            result=killed
            # Swift Testing marks each failing test with "✘ Test NAME …" (not "✘ Test run …").
            # (grep finds nothing when the test process crashed: not an error here.)
            failed=$({ grep -E '^✘ Test [^ ]+ ' "$log" || true; } | { grep -v '^✘ Test run ' || true; } \
                | sed -E 's/^✘ Test ([^ ]+) .*/\1/' | awk '!seen[$0]++')
            count=$(printf '%s\n' "$failed" | grep -c . || true)
            if [ "$count" -eq 0 ]; then
                tests="the test process crashed (exit $status; see logs/$id.log)"
            elif printf '%s\n' "$failed" | grep -qxF "${killers[$i]}"; then
                tests="\`${killers[$i]}\`"
                [ "$count" -gt 1 ] && tests="$tests and $((count - 1)) more"
            else
                tests="$count tests, but not its own \`${killers[$i]}\` (first: $(printf '%s\n' "$failed" | head -2 | paste -sd' ' -))"
            fi
        fi
        echo "   $result after ${seconds}s${tests:+: $tests}"
    fi
    [ $result = SURVIVED ] && survivors=$((survivors + 1))
    [ $result = INVALID ] && invalid=$((invalid + 1)) && echo "   INVALID: $tests"
    echo "| $id | \`${file#Sources/}\` | ${descriptions[$i]} | $result | ${tests:-} |" >>"$report"
done
echo
cat "$report"
echo
echo "${#selected[@]} mutants: $((${#selected[@]} - survivors - invalid)) killed, $survivors survived, $invalid invalid ($(date -u +%Y-%m-%d))"
[ $survivors -eq 0 ] && [ $invalid -eq 0 ]
exit
}
