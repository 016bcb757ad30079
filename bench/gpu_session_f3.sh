#!/usr/bin/env bash
# Device call 3 of the 2026-12-01 (second) session, one H200, carrying .gpu4. Issue 13:
#   1. the int8 matrix-vector kernel per 4B projection (bench_gemv.py --weights int8): the default blocks against
#      cuBLAS bf16, then a sweep of the plain products (what generate runs) over rows x columns x warps;
#   2. the steady cost of one more video on one GPU, int8 AR weights + FP8 DiT GEMMs (batch mode over 1 and 3
#      lines), with .pyc files written (PYTHONDONTWRITEBYTECODE unset, as an installed environment).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/f3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
(taskset -c 8-15 timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1) &
taskset -c 0-7 timeout 60 python3 bench/bench_gemv.py --weights int8 --no-sweep > "$L/gemv.log" 2>&1
taskset -c 0-7 timeout 200 python3 bench/bench_gemv.py --weights int8 --quick-sweep --shapes qkv,proj,fc1,fc2,output > "$L/sweep.log" 2>&1
wait
timeout 260 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --per-video-only > "$L/pervideo.log" 2>&1
for f in setup gemv sweep pervideo; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -14; done
cp $L/*.log "$OUT"/ 2>/dev/null
