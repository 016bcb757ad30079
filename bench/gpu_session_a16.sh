#!/usr/bin/env bash
# Fifteenth session (2026-12-02), one H200 call after `bash bench/gpu_fa4_install.sh a` on the same warm machine,
# carrying .fa4b: installs FA4's second part, then times the AR decode's attention at the 4B's shapes (batch 1, one
# query row, 32 heads / 8 KV groups, hd 128, 16 layers' caches in one CUDA graph): the Triton split-K kernel generate
# uses against FlashAttention-4's forward with its split-KV path (its split heuristic, and 8-64 splits forced).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
bash bench/gpu_fa4_install.sh b || exit $?
export PYTHONPATH=/tmp/fa4site:/tmp/fa4site/nvidia_cutlass_dsl/dsl_packages:$PWD PYTHONWARNINGS=ignore
unset PYTHONDONTWRITEBYTECODE
timeout 420 python3 bench/bench_decode_attention.py --batch 1 --lengths 6144,9216,12800 \
  --modes triton,fa4,fa4-s8,fa4-s16,fa4-s32,fa4-s64 2>&1 | grep -vE "Warning|warn\(" | tail -30 | tee "$OUT/fa4_decode.log"
