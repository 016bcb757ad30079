#!/usr/bin/env bash
# Device call c9 (2026-12-01, eighth session), one fresh H200, carrying .gpu4. Issue 13, many-video jobs: bf16
# everywhere (the default) with eight lines decoded together, no discarded batch (its Triton compiles fall into the
# load and AR compile columns, which are subtracted); then a9's FP8 batch of 4 again without a discard, to see
# whether skipping it biases the per-video figure (a9: 25.2 s with a discard).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c9; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
export BENCH_NO_DISCARD=1
timeout 300 python3 bench/bench_generate_e2e.py --timeout 290 --work-dir /tmp/e2e --configs dd --input video \
  --batches 8:8 > "$L/dd88.log" 2>&1
cp $L/*.log "$OUT"/ 2>/dev/null
timeout 150 python3 bench/bench_generate_e2e.py --timeout 140 --work-dir /tmp/e2e --configs dd-fp8 --input video \
  --batches 4:4 > "$L/fp44.log" 2>&1
cp $L/*.log "$OUT"/ 2>/dev/null
for f in setup dd88 fp44; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -3; done
