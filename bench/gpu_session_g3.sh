#!/usr/bin/env bash
# Device call 4 of the 2026-12-01 (second) session, one H200, carrying .gpu4. Issue 13, the int8 gemv kernel reading
# int32 words and unpacking bytes with shifts (gemv_triton.unpack_int8) instead of int-to-float conversions:
#   1. its tests on the GPU, and bench_gemv.py --weights int8 (against call f3's 2.3-3.0 TB/s), a quick sweep of
#      two shapes; meanwhile the e2e random folders;
#   2. the whole generate, int8 AR weights + FP8 DiT GEMMs, twice (the first writes the .pyc files).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/g3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
(taskset -c 8-15 timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1) &
taskset -c 0-7 timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_int8.py > "$L/pytest.log" 2>&1
taskset -c 0-7 timeout 60 python3 bench/bench_gemv.py --weights int8 --no-sweep > "$L/gemv.log" 2>&1
taskset -c 0-7 timeout 100 python3 bench/bench_gemv.py --weights int8 --quick-sweep --shapes qkv,fc1 > "$L/sweep.log" 2>&1
wait
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e1.log" 2>&1
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e2.log" 2>&1
for f in setup pytest gemv sweep e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -9; done
cp $L/*.log "$OUT"/ 2>/dev/null
