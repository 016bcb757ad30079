#!/usr/bin/env bash
# Device call 5 of the 2026-12-01 (fourth) session, one H200, carrying .gpu4. Issue 13: the DiT's elementwise
# Triton kernels at the real shapes per num_warps (bench_dd_elementwise.py).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
timeout 300 python3 bench/bench_dd_elementwise.py 2>&1 | grep -vE "Warning|warn\(|pynvml" | tee "$OUT/elementwise.log"
