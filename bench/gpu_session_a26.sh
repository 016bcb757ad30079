#!/usr/bin/env bash
# Twenty-third session, call a26 (one H200 carrying .gpu4, ~6 min): the speculative step's parts besides the products.
# (1) verify_kernel's launch choices (rows per block, warps, waves) at M = 17 / 33 / 65 and 5,120 / 12,700 filled
# slots; the default is all rows in one block, 8 warps, 4 waves (not swept before).
# (2) the torch accept/reject's CUDA kernels by time at M = 17 / 33 / 65 (0.36 / 0.50 / 0.74 ms alone, calls b25/c25).
# (3) the whole step (verify forward + accept/reject, replayed from its CUDA graph) by kernel at L = 16 / 32 / 64: where
# the forward's ~0.9 ms over its products goes.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
timeout 200 python3 bench/bench_verify_parts.py > "$OUT/parts.log" 2>&1
echo "parts rc=$?"
grep -E "^\||^best|^accept|Name|^ +(aten|void|at::|_|[a-z])" "$OUT/parts.log" | cut -c1-180 | head -110
timeout 330 python3 bench/bench_speculative.py --runs "" --profile 16,32,64 > "$OUT/profile.log" 2>&1
echo "profile rc=$?"
grep -vE "Warning|warn|^ *$" "$OUT/profile.log" | cut -c1-170 | tail -90
