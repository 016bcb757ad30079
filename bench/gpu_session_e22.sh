#!/usr/bin/env bash
# Nineteenth session, one H200 carrying .gpu4 (~3 min). Issue 13: where the exact bf16 decode step's time goes now
# (generate's default at batch 1, the whole 12,800-slot cache attended as generate does): +gemv (no PDL, so the
# kernels' times add up; the K/V writes separate) and +pdl (what generate runs), 100 graph replays each.
# Prediction: the products ~1.75 ms of ~2.26 ms a token; attention ~0.3 ms; the rest ~0.2 ms.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 300 python3 bench/bench_generate.py --batch 1 --bucket 0 --check 0 --max-new-tokens 1024 \
  --configs +gemv,+pdl --graph-profile 100 > "$OUT/prof.log" 2>&1
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/prof.log" | tail -60 | cut -c1-200
