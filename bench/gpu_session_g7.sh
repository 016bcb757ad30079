#!/usr/bin/env bash
# Device call 7 of the 2026-12-01 (sixth) session, one H200, carrying .gpu4. Issue 13: the prompt encoded before the
# diffusion decoder's background load starts (it was 0.4 s alone and 1.1-1.5 s beside the load): the whole generate,
# int8 + FP8, three fresh processes.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/g7; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for i in 1 2 3; do
  timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
for f in e2e1 e2e2 e2e3; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml|^# (setup|cosmos)|^\| (config|---)" "$L/$f.log" | tail -3; done
