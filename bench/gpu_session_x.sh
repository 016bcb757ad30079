#!/usr/bin/env bash
# Device call 3 of the 2026-11-30 late session, nvidia-h200-x2, carrying .gpu4. Issue 13, the whole generate:
#   1. TP=1 on GPU 0, dd (its DiT's first step now printed: where the in-generate slowdown sits);
#   2. two GPUs under torchrun (TP=2 AR model, the decoder's guidance split, the decoder loaded during the AR decode):
#      dd and dd-int8.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/x1; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
CUDA_VISIBLE_DEVICES=0 timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd > "$L/e2e1.log" 2>&1
timeout 300 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dd-int8 --nproc 2 > "$L/e2e2.log" 2>&1
for f in e2e1 e2e2; do echo "=== $f"; grep -E "^\||^#|rror|Traceback" "$L/$f.log" | tail -12; done
cp $L/*.log "$OUT"/ 2>/dev/null
