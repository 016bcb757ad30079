#!/usr/bin/env bash
# Twentieth session, one H200 carrying .gpu4 (~3 min). Issue 13: a whole M-token verify step of the 4B (Megatron's
# layers, cuBLAS, M-query GEMM attention over a 6,144-slot bucket) against generate's one-token step, in graphs.
# Prediction (Megatron layers; measured 4.1 ms at c23): ~2.7-3.0 ms at M = 8. Fused-step layers: ~2.4-2.6 ms at M = 8,
# 1.1-1.2 steps (products 2.02 ms + ~0.4-0.5 ms of compiled small ops and the M-query attention). Old: 1.2-1.35
# one-token steps at M = 8; M = 1 itself slower than generate's 2.23 ms.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 400 python3 bench/bench_verify_step.py > "$OUT/verify_step.log" 2>&1; echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/verify_step.log" | tail -20 | cut -c1-250
