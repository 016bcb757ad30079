#!/usr/bin/env bash
# Twentieth session, one H200 carrying .gpu4 (~3 min). Issue 13: a whole M-token verify step of the 4B (Megatron's
# layers, cuBLAS, M-query GEMM attention over a 6,144-slot bucket) against generate's one-token step, in graphs.
# Predictions. Megatron's layers: 2.7-3.0 ms at M = 8, 1.2-1.35 one-token steps (first run of this call: 4.1 ms,
# 1.91). The fused step's layers (added after that run): 2.4-2.6 ms at M = 8, 1.1-1.2 steps (the products' 2.02 ms
# of call b23 + ~0.4-0.5 ms of compiled small ops and the M-query attention).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 400 python3 bench/bench_verify_step.py > "$OUT/verify_step.log" 2>&1; echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/verify_step.log" | tail -20 | cut -c1-250
