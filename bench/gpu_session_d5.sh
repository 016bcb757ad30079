#!/usr/bin/env bash
# Device call 3 of the 2026-12-01 (fourth) session, one H200, carrying .gpu4. Issue 13 (batch throughput): the
# AR decode (4B, int8) and the DiT's guided steps (7B, FP8 GEMMs) alone and at once on two streams of one GPU.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
timeout 400 python3 bench/bench_overlap.py --tokens 2560 --dit-steps 4 2>&1 | grep -vE "Warning|warn\(|pynvml" | tee "$OUT/overlap.log"
