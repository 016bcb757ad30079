#!/usr/bin/env bash
# Device call e8 (2026-12-01, seventh session), one H200, carrying .gpu4. Issue 13: the whole generate (int8 + FP8,
# the guide's 9-frame prompt) with the FP8 path as now and as before call c8 (bench/fp8_old.patch: the written-out
# e4m3 rounding, the GELU formula, exact accumulation) on the same machine: new, new, old, old, new.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/e8; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
run() { timeout 110 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --timeout 100 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
run new1; run new2
patch -p1 < bench/fp8_old.patch > $L/patch.log 2>&1; run old1; run old2
patch -R -p1 < bench/fp8_old.patch >> $L/patch.log 2>&1; run new3
for f in new1 new2 old1 old2 new3; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml|^# (setup|cosmos)|^\| (config|---)" "$L/$f.log" | tail -3; done
