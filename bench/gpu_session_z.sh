#!/usr/bin/env bash
# Device call 5 of the 2026-11-30 late session, nvidia-h200-x2, carrying .gpu4. Issue 13, the remedy for the DiT's
# in-generate slowdown (generate now runs a one-block DiT at the real shapes before the AR decode):
#   GPU 1: bench_dd_after_ar.py --before warm-1block (does the one-block warm-up keep the DiT fast after generating?);
#   GPU 0: the whole generate at TP=1 (dd); then both GPUs: the whole generate under torchrun (dd).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/z1; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
(CUDA_VISIBLE_DEVICES=1 taskset -c 16-31 timeout 120 python3 bench/bench_dd_after_ar.py --before warm-1block > "$L/warm.log" 2>&1) &
CUDA_VISIBLE_DEVICES=0 taskset -c 0-15 timeout 190 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd > "$L/e2e1.log" 2>&1
wait
timeout 130 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd --nproc 2 > "$L/e2e2.log" 2>&1
for f in warm e2e1 e2e2; do echo "=== $f"; grep -E "^\||^#|rror|Traceback" "$L/$f.log" | tail -8; done
cp $L/*.log "$OUT"/ 2>/dev/null
