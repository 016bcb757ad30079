#!/usr/bin/env bash
# Prepared in the twenty-second session for the next one (one H200 carrying .gpu4, ~3 min): the speculative step's
# parts besides the products, alone. (1) verify_kernel's launch choices (rows per block, warps, waves) at M = 17 / 33 /
# 65 and 5,120 / 12,700 filled slots; the default is all rows in one block, 8 warps, 4 waves (not swept before).
# (2) the torch accept/reject's CUDA kernels by time at M = 17 / 33 / 65 (0.36 / 0.50 / 0.74 ms alone, calls b25/c25):
# which op to replace next (the fp32 segmented sort is the suspect; sorting the bf16 logits halves its radix passes).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 300 python3 bench/bench_verify_parts.py > "$OUT/parts.log" 2>&1
echo "rc=$?"
grep -E "^\||^best|^accept|Name|^ +(aten|void|at::|_|[a-z])" "$OUT/parts.log" | cut -c1-200 | head -120
