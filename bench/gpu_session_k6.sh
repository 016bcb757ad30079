#!/usr/bin/env bash
# Device call 11 of the 2026-12-01 (fifth) session, one H200, carrying .gpu4. Issue 13: the whole generate, int8 +
# FP8, after the timing line's load took in the command's startup (parsing, imports): twice.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/k6; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for i in 1 2; do
  timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
for f in setup e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml|^# (setup|cosmos)|^\| (config|---)" "$L/$f.log" | tail -3; done
