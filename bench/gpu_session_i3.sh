#!/usr/bin/env bash
# Device call 6 of the 2026-12-01 (second) session, one H200, carrying .gpu4. Issue 13: the steady cost of one more
# video (batch mode over 1 and 3 lines) with int8 AR weights (word-wise kernel) + FP8 DiT GEMMs, .pyc written;
# meanwhile the FP8 and int8 kernel tests on the GPU (after the e2e folders are written they share the GPU briefly).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/i3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
(taskset -c 8-15 timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fp8.py tests/test_gemv_int8.py > "$L/pytest.log" 2>&1) &
taskset -c 0-7 timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
wait
timeout 230 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --per-video-only > "$L/pervideo.log" 2>&1
for f in pytest setup pervideo; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -6; done
cp $L/*.log "$OUT"/ 2>/dev/null
