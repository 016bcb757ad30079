#!/usr/bin/env bash
# Device call 6 of the 2026-12-01 (fourth) session, one H200: FP8 tensor-core products (torch._scaled_mm, M = 16)
# at the 4B's decode shapes against the int8 matrix-vector kernel's figures (bench_fp8_decode_gemm.py).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
timeout 200 python3 bench/bench_fp8_decode_gemm.py 2>&1 | grep -vE "Warning|warn\(|pynvml" | tee "$OUT/fp8gemm.log"
