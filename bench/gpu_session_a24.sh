#!/usr/bin/env bash
# Twenty-first session, one H200 carrying .gpu4 (~5 min). Issue 13: speculative Jacobi decoding of the 4B
# (bench_speculative.py): the verify forward's cost at L + 1 rows, the whole 7,680-token decode per window, and
# generate's one-token decoder beside it.
# Predictions: the forward alone ~2.9-3.4 ms at L = 8 (call c23's fused-step layers: 3.4 ms at M = 8 with the GEMM
# attention), ~3.5-4.5 ms at L = 64 (the products still memory-bound at 65 rows; attention by SDPA); eager in the
# decode +0.5-1.5 ms (launches, the host sync, top-p over L + 1 rows ~0.2 ms).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader
timeout 540 python3 bench/bench_speculative.py --windows 8,16,32,64,128 > "$OUT/speculative.log" 2>&1; echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/speculative.log" | tail -40 | cut -c1-300
