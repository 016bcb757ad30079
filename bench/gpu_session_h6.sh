#!/usr/bin/env bash
# Device call 8 of the 2026-12-01 (fifth) session, one H200, carrying .gpu4. Issue 13: the default command (bf16
# everywhere, with the 4 x 2,048 bf16 product blocks) refreshed on a warm cache, twice, then int8 + FP8 once; the
# guide's 9-frame prompt.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/h6; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
timeout 110 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for run in dd:1 dd:2 dd-int8-fp8:3; do
  timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs "${run%%:*}" --input video > "$L/e2e${run##*:}.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
for f in setup e2e1 e2e2 e2e3; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml|^# (setup|cosmos)|^\| (config|---)" "$L/$f.log" | tail -3; done
