#!/usr/bin/env bash
# Twenty-third session, call a30 (one H200 carrying .gpu4, ~2.5 min): the decode alone with the committed speculative
# step (verify attention with 3 pipeline stages, nucleus_probs, cuBLAS products), L = 16 / 32 / 64.
# Prediction (a27 at 2 stages: 3.15 / 3.41 / 4.00 ms a step): ~3.12 / ~3.35 / ~3.85 ms.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 200 python3 bench/bench_speculative.py --runs 16:triton,32:triton,64:triton > "$OUT/speculative.log" 2>&1
echo "speculative rc=$?"
grep -E "^\||^one-token|^AR stage|^L=" "$OUT/speculative.log" | cut -c1-300
