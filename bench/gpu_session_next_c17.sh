#!/usr/bin/env bash
# Prepared in the thirteenth session (2026-12-02) for a later one-H200 call (~2 min), carrying .gpu4 (no FA4 needed).
# Issue 13's CV8x8x8 decode (0.5-0.7 s of the 30.0-30.3 s after initialisation on the slower machines): does cuDNN's
# algorithm search (cudnn.benchmark, off in generate) make the decoder's 3D convolutions faster at the released
# sizes, and what does its first call cost (it would need a warm-up at the output's shapes in the load)?
# bench_cv_cut.py prints the decode with and without it, plus the write rows measured before (noise / smooth).
# Ran in the sixteenth session (call 5): 423.2 -> 422.7 ms, no gain; cudnn.benchmark stays off.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 400 python3 bench/bench_cv_cut.py --reps 5 2>&1 | tee "$OUT/cv_cut.log"
