#!/usr/bin/env bash
# Device call 1 of the 2026-12-01 (fourth) session, nvidia-h200-x2, carrying .gpu4 (+ the nvidia-cudnn-frontend
# 1.32.0 cp312 wheel). Issue 13:
#   GPU 1: cuDNN's FP8 attention against bf16 SDPA at the DiT's shape (bench_fp8_attention.py), while
#   GPU 0 writes the random folders;
#   then both GPUs: the whole generate with int8 AR weights + FP8 DiT GEMMs under torchrun (TP=2 AR model, the
#   guidance split over the two GPUs), twice (the first run writes the .pyc files and the Triton cache), then the
#   steady cost of one more video (batch mode over 1 and 3 lines).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b5; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
(CUDA_VISIBLE_DEVICES=0 taskset -c 0-15 timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1) &
CUDA_VISIBLE_DEVICES=1 taskset -c 16-31 timeout 150 python3 bench/bench_fp8_attention.py > "$L/fp8attn.log" 2>&1
wait
cp $L/*.log "$OUT"/ 2>/dev/null
for i in 1 2; do
  timeout 110 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --nproc 2 > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --nproc 2 --per-video-only > "$L/pv.log" 2>&1
for f in setup fp8attn e2e1 e2e2 pv; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -14; done
cp $L/*.log "$OUT"/ 2>/dev/null
