#!/usr/bin/env bash
# Device call 9 of the 2026-12-01 (fourth) session, one H200, carrying .gpu4. Issue 13: the AR model load fused and
# cut on the GPU one tensor at a time (checkpoints.load_native_state); the whole generate, int8 + FP8, twice.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/j5; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for i in 1 2; do
  timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
for f in setup e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -4; done
