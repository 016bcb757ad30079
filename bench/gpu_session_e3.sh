#!/usr/bin/env bash
# Device call 2 of the 2026-12-01 (second) session, one H200, carrying .gpu4. Issue 13:
#   1. the DiT kernel tests on the GPU after the scale fix (amax * (1/448), as torch divides by a scalar on CUDA),
#      while the e2e random folders are written (other cores);
#   2. the image sets PYTHONDONTWRITEBYTECODE=1 (call d3: dont_write_bytecode 1), so every process compiles every .py
#      it imports. With it unset, as in an installed environment: the whole generate on the 9-frame prompt, bf16
#      first (it writes the .pyc files), then int8 AR weights + FP8 DiT GEMMs, to compare with call d3's
#      (bytecode off) figures.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/e3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
echo "PYTHONDONTWRITEBYTECODE=${PYTHONDONTWRITEBYTECODE-unset}" > "$L/env.log"
(taskset -c 8-15 timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1) &
taskset -c 0-7 timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fp8.py tests/test_dd_fused.py > "$L/pytest.log" 2>&1
wait
unset PYTHONDONTWRITEBYTECODE
timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dd-int8-fp8 --input video > "$L/e2e1.log" 2>&1
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video > "$L/e2e2.log" 2>&1
for f in env pytest setup e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -12; done
cp $L/*.log "$OUT"/ 2>/dev/null
