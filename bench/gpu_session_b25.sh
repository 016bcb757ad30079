#!/usr/bin/env bash
# (Run at cd3357e; accept_kernel and its bench/test parts were removed after this call measured it slower.)
# Twenty-second session, one H200 carrying .gpu4 (~8 min). Issue 13. Call a25 measured verify_kernel: a step of L = 16
# 4.48 -> 3.54 ms (forward alone 3.58 -> 2.91 ms), the AR stage at random weights' 1.97 tokens a step 17.1 -> 13.8 s;
# but the first accept_kernel (one program a row, 17 bisection passes) took 0.43 ms against the torch ops' 0.36.
# Now accept_kernel runs R x 8 programs per launch (stats, 3 search passes of 64 thresholds, boundary, group, final,
# pick). Predictions: the accept/reject alone ~0.04-0.06 ms; a step of L = 16 ~3.2 ms (1.4 one-token steps), the AR
# stage ~12.5 s at random weights. Then the whole generate (random folders, the guide's 9-frame prompt, no FA4):
# generate's exact defaults (one-token decoder) against --speculative-window 16 and 64: after init ~41 s against
# ~36 and ~35 s (the AR stage 17.6 -> ~12.5 / ~11 s at random weights' 2-3 tokens a step).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b25; rm -rf $L; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
timeout 100 python3 bench/gpu_tier_run.py speculative > "$OUT/tier.log" 2>&1
echo "tier rc=$?"
sed -n '/^GPU test tier on/,$p' "$OUT/tier.log" | grep "^| test_" | cut -c1-300
grep -E "^MEASURED speculative_kernels|Error|assert" "$OUT/tier.log" | grep -o '"accept".*\|Error.*\|assert.*' | head -5 | cut -c1-400
timeout 240 python3 bench/bench_speculative.py --runs 16:triton+torch,16:triton+kernel,32:triton+kernel,64:triton+kernel \
  > "$OUT/speculative.log" 2>&1
echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/speculative.log" | grep -E "^\||^one-token|^AR stage" | cut -c1-300
e2e_setup
run() { E2E_TIMEOUT=85 e2e "$1" 560 --configs "$2"; }
run d1 dd; run s16 dd-spec16; run s64 dd-spec64; run d2 dd
e2e_report d1 s16 s64 d2
