#!/usr/bin/env bash
# Prepared for a later session with nvidia-h200-x4 (four GPUs; not lent in the fifth session), carrying .gpu4.
# Issue 13: the whole generate on four GPUs: TP=4 AR model and the diffusion decoder's guidance passes each cut by
# context parallelism over two GPUs (--diffusion-decoder-parallel auto), int8 + FP8, twice (the first fills the .pyc
# files and the Triton cache); then the same with --diffusion-decoder-parallel guidance (GPUs 0 and 1 only) to see
# what context parallelism itself saves; then the steady cost of one more video. Prediction (call i6): DiT sampling
# ~5.0 s against 8.9 s on two GPUs.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/x4; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for i in 1 2; do
  timeout 120 python3 bench/bench_generate_e2e.py --timeout 95 --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --nproc 4 > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
timeout 120 python3 bench/bench_generate_e2e.py --timeout 95 --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --nproc 4 \
  --generate-args="--diffusion-decoder-parallel guidance" > "$L/guidance.log" 2>&1
timeout 200 python3 bench/bench_generate_e2e.py --timeout 190 --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --nproc 4 --per-video-only > "$L/pv.log" 2>&1
for f in setup e2e1 e2e2 guidance pv; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -6; done
cp $L/*.log "$OUT"/ 2>/dev/null
