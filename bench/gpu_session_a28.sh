#!/usr/bin/env bash
# Ran at a27a4cd; rows_gemm was removed after this call (slower than cuBLAS at M = 33 / 65, even at 17: BENCHMARKS.md).
# Twenty-third session, call a28 (one H200 carrying .gpu4, ~7 min). Issue 13: the speculative verify forward's products
# as rows_gemm (Triton, swap-AB, split-K with a fixed-order reduce) instead of cuBLAS (2.12-2.26 ms a forward in a26).
# (1) the GPU tier's rows_gemm / nucleus_probs / speculative / verify-attention tests; (2) bench_rows_gemm.py at
# M = 17 / 33 / 65, its best choices saved; (3) the decode with those choices, cuBLAS against rows_gemm at L = 16.
# Predictions: the products ~2.12 -> ~1.8 ms a forward at M = 17; a step 3.15 -> ~2.85 ms (L = 16), 4.0 -> ~3.6 (L = 64).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/gpu_tier_run.py rows_gemm nucleus_probs verify_attention speculative > "$OUT/tier.log" 2>&1
echo "tier rc=$?"
grep "^| test_" "$OUT/tier.log" | cut -c1-300
grep -E "Error|assert" "$OUT/tier.log" | head -5 | cut -c1-300
timeout 220 python3 bench/bench_rows_gemm.py --ms 17,33,65 --save-tuned "$OUT/rows_tuned.json" > "$OUT/rows.log" 2>&1
echo "rows rc=$?"
grep -E "^\| |^forward|^best|written" "$OUT/rows.log" | cut -c1-250
tuned=(); [ -s "$OUT/rows_tuned.json" ] && tuned=(--rows-tuned "$OUT/rows_tuned.json")
timeout 240 python3 bench/bench_speculative.py "${tuned[@]}" --runs 16:triton:cublas,16:triton,32:triton,64:triton \
  > "$OUT/speculative.log" 2>&1
echo "speculative rc=$?"
grep -E "^\||^one-token|^AR stage|^rows_gemm" "$OUT/speculative.log" | cut -c1-300
