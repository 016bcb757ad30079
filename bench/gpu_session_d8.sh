#!/usr/bin/env bash
# Device call d8 (2026-12-01, seventh session), one H200, carrying .gpu4. Issue 13: the FP8 path's new defaults (the
# GPU's e4m3 rounding, the GELU table, fast accumulation): GPU tier tests, the quantizers' launch widths, then the
# whole generate (int8 + FP8, the guide's 9-frame prompt, prompt-first order) three times.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/d8; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fp8.py tests/test_dd_fused.py > $L/tier.log 2>&1
tail -2 $L/tier.log; cp $L/*.log "$OUT"/
timeout 120 python3 bench/bench_dd_elementwise.py > $L/elementwise.log 2>&1; cp $L/*.log "$OUT"/
grep -E "quantize" $L/elementwise.log
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for i in 1 2 3; do
  timeout 110 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
    --timeout 100 > "$L/e2e$i.log" 2>&1; cp $L/*.log "$OUT"/
done
for f in e2e1 e2e2 e2e3; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml|^# (setup|cosmos)|^\| (config|---)" "$L/$f.log" | tail -3; done
