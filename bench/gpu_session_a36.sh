#!/usr/bin/env bash
# A record of the call: rows_kernel, bench_rows.py and --verify-products were removed after it (commit 7a1b747 has
# them), so it no longer runs on later commits.
# Twenty-fifth session, call a36 (one H200 carrying .gpu4, ~8 min, after `bash bench/gpu_fa4_install.sh a` and `b`
# on the same warm machine; a37 follows on it). Issue 13, the verify forward's products by rows_kernel:
#   1. GPU tier: rows_kernel against float64 at the 4B's shapes (M = 16 / 64, split-K, graph replays); greedy
#      speculative decoding on CUDA graphs (now on rows_kernel); the verify attention.
#   2. bench_rows.py: a sweep of launch choices per shape at M = 64, then cuBLAS / configured / best at M = 16/32/64;
#      the best goes to /tmp/rows_best.json (COSMOS_AR_ROWS_CONFIGS for the rest of this call and for a37).
#   3. the decode alone at L = 63 on cuBLAS, then on rows_kernel at L = 63 / 31 / 15 (a34: 3.44 / 3.07 / 2.92 ms).
# Predictions: products per step 2.26 -> ~1.85 ms at M = 64 (the one-token decode's Triton products: 1.84 ms);
# a step at L = 63 3.44 -> ~3.05 ms; the AR decode 8.6 -> ~7.6 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/gpu_tier_run.py rows_kernel speculative_decoding verify_attention 2>&1 \
  | grep -vE "Warning|warn\(" | tail -8 | tee "$OUT/tier.log"
timeout 270 python3 bench/bench_rows.py --write /tmp/rows_best.json --budget 170 > "$OUT/rows.log" 2>&1
echo "rows rc=$?"; grep -vE "Warning|warn\(|pynvml" "$OUT/rows.log" | tail -32 | cut -c1-260
[ -f /tmp/rows_best.json ] && export COSMOS_AR_ROWS_CONFIGS=/tmp/rows_best.json && cp /tmp/rows_best.json "$OUT/"
timeout $((585 - SECONDS)) python3 bench/bench_speculative.py --runs 63:triton:cublas,63:triton,31:triton,15:triton \
  > "$OUT/speculative.log" 2>&1
echo "speculative rc=$?"
grep -E "^\||^one-token|^L=" "$OUT/speculative.log" | head -10 | cut -c1-300
exit 0
