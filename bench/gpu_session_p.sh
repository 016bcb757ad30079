#!/usr/bin/env bash
# Device call 3 of the 2026-11-30 evening session, nvidia-h200-x2, carrying .gpu4.
#   GPU 0 (cores 0-3): issue 12: the projections alone (cuBLAS vs the Triton matrix-vector kernel, plain and fused,
#          autotuned and swept); then batch 1 with +fused-step / +gemv / +gemv-fused twice each (run-to-run spread).
#   GPU 1 (cores 4-31): issue 15: prepare-data with the decode processes started by the producer thread (overlapping
#          the tokenizer load), 480 and 960 clips; then issue 13: the whole generate with the diffusion decoder
#          (load split).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/p3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
( export CUDA_VISIBLE_DEVICES=0
  timeout 230 taskset -c 0-3 python3 bench/bench_gemv.py > "$L/gemv.log" 2>&1
  timeout 300 taskset -c 0-3 python3 bench/bench_generate.py --batch 1 --check 0 \
    --configs +fused-step,+gemv,+gemv-fused,+fused-step,+gemv,+gemv-fused > "$L/gen1.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  mkdir -p /tmp/prep/videos
  [ -f /tmp/prep/videos/video_011.mp4 ] || taskset -c 4-31 python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 12 239); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
  timeout 150 taskset -c 4-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 16 \
    --budget-s 100 --encode-iters 2 --read-clips 32 --rows "procs+fast" > "$L/prep480.log" 2>&1
  timeout 130 taskset -c 4-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 240 --decode-workers 16 \
    --budget-s 100 --encode-iters 1 --read-clips 16 --rows "procs+fast" > "$L/prep960.log" 2>&1
  timeout 270 taskset -c 4-31 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd > "$L/e2e.log" 2>&1 ) &
wait
for f in gemv gen1 prep480 prep960 e2e; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9].*(grid|GPU|H200|clips|bf16|load)|rror|Traceback|startup|phases" "$L/$f.log" | tail -24; done
cp $L/*.log "$OUT"/ 2>/dev/null
