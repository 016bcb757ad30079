#!/usr/bin/env bash
# Device call 5 of the 2026-12-01 (second) session, one H200, carrying .gpu4. Issue 13: the word-wise int8 gemv with
# INT8_CONFIG = 8 rows x 2,048 columns (call g3's sweep): bench_gemv.py --weights int8 for every shape, then the
# whole generate with int8 AR weights + FP8 DiT GEMMs once (for its AR tokens/s; .pyc files are written by it).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/h3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
(taskset -c 8-15 timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1) &
taskset -c 0-7 timeout 60 python3 bench/bench_gemv.py --weights int8 --no-sweep > "$L/gemv.log" 2>&1
wait
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e1.log" 2>&1
for f in setup gemv e2e1; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -9; done
cp $L/*.log "$OUT"/ 2>/dev/null
