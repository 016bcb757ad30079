#!/usr/bin/env bash
# Device call 2 of the 2026-11-30 late session, nvidia-h200-x2, carrying .gpu4. Issue 13, one GPU each:
#   GPU 0 (cores 0-15): the whole generate at TP=1, dd (bf16, the decoder now loaded during the AR decode) and
#     dd-int8 (--decode-weights int8); then bench_dd_in_generate.py (the DiT's steps alone vs inside generate);
#   GPU 1 (cores 16-31): the int8 kernel tests compiled, the int8 block sweep, bench_generate +pdl vs +int8.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/w1; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
(
  export CUDA_VISIBLE_DEVICES=1
  taskset -c 16-31 timeout 120 python3 -m pytest tests/test_gemv_int8.py -q -p no:cacheprovider > "$L/int8_tests.log" 2>&1
  taskset -c 16-31 timeout 150 python3 bench/bench_gemv.py --weights int8 > "$L/gemv_int8.log" 2>&1
  taskset -c 16-31 timeout 240 python3 bench/bench_generate.py --batch 1 --configs +pdl,+int8,+pdl,+int8 > "$L/gen_int8.log" 2>&1
) &
(
  export CUDA_VISIBLE_DEVICES=0
  taskset -c 0-15 timeout 330 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dd-int8 > "$L/e2e1.log" 2>&1
  taskset -c 0-15 timeout 200 python3 bench/bench_dd_in_generate.py --work-dir /tmp/e2e > "$L/diag.log" 2>&1
)
wait
for f in int8_tests gemv_int8 gen_int8 e2e1; do echo "=== $f"; grep -E "^\||^#|passed|failed|rror|Traceback" "$L/$f.log" | tail -24; done
echo "=== diag"; grep -E "^##|^#|rror|Traceback" "$L/diag.log" | tail -12
cp $L/*.log "$OUT"/ 2>/dev/null
