#!/usr/bin/env bash
# Device call b9 (2026-12-01, eighth session), one H200 (warm after a9), carrying .gpu4. Issue 13, many-video jobs:
# eight lines decoded together (bf16 AR at batch 8, FP8 DiT), and bf16 everywhere (the default) at batch 4. No
# discarded batch: a9 filled the Triton cache; new compiles fall into the AR compile column, which is subtracted.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b9; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
[ -f /tmp/e2e/input.mp4 ] || timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
export BENCH_NO_DISCARD=1
timeout 280 python3 bench/bench_generate_e2e.py --timeout 270 --work-dir /tmp/e2e --configs dd-fp8 --input video \
  --batches 8:8 > "$L/b88.log" 2>&1
cp $L/*.log "$OUT"/ 2>/dev/null
timeout 200 python3 bench/bench_generate_e2e.py --timeout 190 --work-dir /tmp/e2e --configs dd --input video \
  --batches 4:4 > "$L/dd44.log" 2>&1
cp $L/*.log "$OUT"/ 2>/dev/null
for f in b88 dd44; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -4; done
