#!/usr/bin/env bash
# Device call g8 (2026-12-01, seventh session), one H200, carrying .gpu4. Issue 13: the prefill takes 0.8-1.4 s inside
# generate against 0.3 s for a fresh process's first prefill alone (call f8): does a 0.2 ms GIL switch interval while
# the decoder loads in the background (bench/switch_interval.patch, removed after; the switch is in commit b913fb2) give the AR stage its time back? Same machine:
# now (a fresh machine's first run), patched, now, patched. int8 + FP8, the guide's 9-frame prompt.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/g8; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
run() { timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --timeout 90 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
P=bench/switch_interval.patch
run now1; patch -p1 < $P > $L/patch.log; run sw1; patch -R -p1 < $P >> $L/patch.log; run now2
patch -p1 < $P >> $L/patch.log; run sw2; patch -R -p1 < $P >> $L/patch.log
for f in now1 sw1 now2 sw2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml|^# (setup|cosmos)|^\| (config|---)" "$L/$f.log" | tail -3; done
