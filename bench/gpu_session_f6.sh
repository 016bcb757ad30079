#!/usr/bin/env bash
# Device call 6 of the 2026-12-01 (fifth) session, one H200, carrying .gpu4. Issue 13: the whole generate, int8 +
# FP8, the guide's 9-frame prompt, after the prompt encode was cut to the 9 real frames: twice (the first fills the
# .pyc files and Triton's cache), then the steady cost of one more video in batch mode.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/f6; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
timeout 110 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for i in 1 2; do
  timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
for f in setup e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -4; done
timeout 250 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --per-video-only > "$L/pv.log" 2>&1
cp $L/*.log "$OUT"/ 2>/dev/null
echo "=== per video"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/pv.log" | tail -4
