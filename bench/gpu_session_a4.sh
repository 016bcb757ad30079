#!/usr/bin/env bash
# Device call 1 of the 2026-12-01 (third) session, one H200, carrying .gpu4. Issue 13: the int4 matrix-vector kernel
# (bench_gemv.py --weights int4, a quick sweep) and the whole generate with int4 AR weights + FP8 DiT GEMMs, twice
# (the first run writes the .pyc files and the Triton cache), then int8 + FP8 once on the same machine.
# It ran at commit 65f08fa (int4 code of d9aabe6 and 6cf46b5); that code was reverted after this call (BENCHMARKS.md,
# issue 13, third session): to rerun it, check out 65f08fa.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a4; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
(taskset -c 8-15 timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1) &
taskset -c 0-7 timeout 200 python3 bench/bench_gemv.py --weights int4 --quick-sweep --shapes qkv,proj,fc1,fc2 > "$L/gemv.log" 2>&1
wait
cp $L/*.log "$OUT"/ 2>/dev/null
for i in 1 2; do
  timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int4-fp8 --input video > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
timeout 90 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e3.log" 2>&1
for f in setup gemv e2e1 e2e2 e2e3; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -9; done
cp $L/*.log "$OUT"/ 2>/dev/null
