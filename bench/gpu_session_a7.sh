#!/usr/bin/env bash
# Device call 1 of the 2026-12-01 (sixth) session, one H200, carrying .gpu4. Issue 13: where the int8 decode step's
# time goes (graph profiles with and without PDL, at ~5,200 and ~10,300 filled slots), and the CV8x8x8 decode / MP4
# write levers (bench_cv_cut.py).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a7; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
nproc > "$L/host.log"
timeout 150 python3 bench/bench_cv_cut.py > "$L/cv.log" 2>&1; cp $L/*.log "$OUT"/
timeout 200 python3 bench/bench_generate.py --batch 1 --configs +int8,+int8-nopdl --check 0 --graph-profile 100 \
  > "$L/prof2.log" 2>&1; cp $L/*.log "$OUT"/
timeout 200 python3 bench/bench_generate.py --batch 1 --prompt-frames 4 --configs +int8-nopdl --check 0 \
  --graph-profile 100 > "$L/prof4.log" 2>&1; cp $L/*.log "$OUT"/
grep -vE "Warning|warn\(|pynvml" $L/cv.log | tail -20
for f in prof2 prof4; do echo "=== $f"; grep -vE "Warning|warn\(|pynvml" $L/$f.log | grep -E "^\||graph profile" | head -60; done
