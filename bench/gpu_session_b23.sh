#!/usr/bin/env bash
# Twentieth session, one H200 carrying .gpu4 (~2 min). Issue 13: the cost side of speculative sampling for the exact
# bf16 decode: a 4B step's products at M = 1..8 rows (cuBLAS) against generate's Triton kernel at M = 1.
# Prediction: cuBLAS at M = 2-4 costs 1.1-1.3x the Triton M = 1 products (cuBLAS already read the big ones at
# ~4 TB/s at M = 1; the small ones slower), M = 8 ~1.5x.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 400 python3 bench/bench_verify_cost.py > "$OUT/verify.log" 2>&1; echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/verify.log" | tail -30 | cut -c1-250
