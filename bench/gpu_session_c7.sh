#!/usr/bin/env bash
# Device call 3 of the 2026-12-01 (sixth) session, one H200, carrying .gpu4. Issue 13: the CUDA int8 kernel in the
# decode (GPU tier test, then bench_generate +int8 against +int8-cuda twice each in one process), then the whole
# generate with int8 (now the CUDA kernel) + FP8, twice.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c7; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/gpu_tier_run.py int8_cuda > "$L/tier.log" 2>&1; cp $L/*.log "$OUT"/
timeout 300 python3 bench/bench_generate.py --batch 1 --configs +int8,+int8-cuda,+int8,+int8-cuda --check 16 \
  > "$L/gen.log" 2>&1; cp $L/*.log "$OUT"/
timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for i in 1 2; do
  timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
grep -vE "Warning|warn\(|pynvml" $L/tier.log | tail -8
grep -vE "Warning|warn\(|pynvml" $L/gen.log | tail -8
for f in setup e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml|^# (setup|cosmos)|^\| (config|---)" "$L/$f.log" | tail -3; done
