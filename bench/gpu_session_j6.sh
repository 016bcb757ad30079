#!/usr/bin/env bash
# Device call 10 of the 2026-12-01 (fifth) session, one H200. Issue 13: the DiT's context parallelism on the GPU's
# kernels at the real shapes, two ranks sharing the one GPU over gloo (check_dd_cp_gpu.py).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONWARNINGS=ignore
unset PYTHONDONTWRITEBYTECODE
timeout 300 torchrun --nproc-per-node 2 --standalone bench/check_dd_cp_gpu.py 2>&1 | grep -vE "Warning|warn\(|pynvml" | tail -20 | tee "$OUT/cp_gpu.log"
