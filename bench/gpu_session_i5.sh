#!/usr/bin/env bash
# Device call 8 of the 2026-12-01 (fourth) session, one H200, carrying .gpu4. Issue 13: the DiT FP8 kernel tests on
# the GPU with the new launch widths (fused quantizers against the eager reference), then the whole generate with
# int8 + FP8 on one GPU, twice (the first run fills the .pyc files and the Triton cache).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/i5; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
(taskset -c 8-15 timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1) &
taskset -c 0-7 timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fp8.py > "$L/pytest.log" 2>&1
wait
cp $L/*.log "$OUT"/ 2>/dev/null
for i in 1 2; do
  timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
for f in pytest setup e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -5; done
