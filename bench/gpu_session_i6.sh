#!/usr/bin/env bash
# Device call 9 of the 2026-12-01 (fifth) session, one H200. Issue 13: the compute left to each GPU when the DiT's
# guidance passes are cut by context parallelism (bench_dd_context_parallel.py; no 4-GPU machine is lent), bf16 and
# FP8 GEMMs.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONWARNINGS=ignore
unset PYTHONDONTWRITEBYTECODE
for gemm in bf16 fp8; do
  timeout 200 python3 bench/bench_dd_context_parallel.py --gemm $gemm --cps 1,2,4,8 2>&1 | grep -vE "Warning|warn\(|pynvml" | tee "$OUT/cp_$gemm.log"
done
