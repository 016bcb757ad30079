#!/usr/bin/env bash
# Twenty-fifth session, call a39 (one H200 carrying .gpu4, ~9 min, after `bash bench/gpu_fa4_install.sh a` and `b`
# on the same warm machine). Issue 13, two cuts of the speculative step's small kernels:
#   - the verify forward's K/V written by the compiled QK-norm/RoPE kernel (fused_step.qk_norm_rope_cache) instead
#     of 32 index_copy_ launches a step (a38: 90 us a step at L = 63);
#   - the nucleus search's rounds summing all 16 thresholds in one 2-D reduction per 512 logits (a38: 4 rounds,
#     110 us a step).
#   1. GPU tier: the nucleus search against float64, the coupled kernels, greedy speculative decoding on graphs.
#   2. the decode alone at L = 63 / 31 / 15 (a36 on cuBLAS: 3.44 ms a step at L = 63, accept/reject alone 0.192 ms).
#   3. the whole generate, exact distribution (--speculative-window 63, FA4, guardrails): warm, then two runs
#      (a37: 30.8 s after init on cuBLAS).
#   4. with time left, the kernels of 20 steps at L = 63.
# Predictions: a step 3.44 -> ~3.28 ms (-0.08 writes, -0.08 search); decode 8.6 -> ~8.2 s; generate ~30.4 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a39; rm -rf $L; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/gpu_tier_run.py nucleus_probs coupled speculative_decoding 2>&1 \
  | grep -vE "Warning|warn\(" | tail -6 | tee "$OUT/tier.log"
timeout 200 python3 bench/bench_speculative.py --runs 63:triton,31:triton,15:triton > "$OUT/speculative.log" 2>&1
echo "speculative rc=$?"
grep -E "^\||^one-token|^L=" "$OUT/speculative.log" | head -8 | cut -c1-300
e2e_setup
run() { E2E_TIMEOUT=95 e2e "$1" "$2" --configs "$3" --guardrails; }
run warm 340 dd-spec63; run g63 420 dd-spec63; run h63 480 dd-spec63
e2e_report warm g63 h63
[ "$SECONDS" -lt 520 ] && timeout $((585 - SECONDS)) python3 bench/bench_speculative.py --runs "" --profile 63 \
  > "$OUT/profile.log" 2>&1 && grep -vE "Warning|warn\(|pynvml" "$OUT/profile.log" | grep -E "^graph|^\| " | head -16 \
  | cut -c1-200
exit 0
