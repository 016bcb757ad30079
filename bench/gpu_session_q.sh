#!/usr/bin/env bash
# Device call 4 of the 2026-11-30 evening session, nvidia-h200-x2, carrying .gpu4.
#   GPU 0 (cores 0-3): issue 12: +fused-step vs +gemv with the exactness check (32 steps); then issue 13: the whole
#          generate with the diffusion decoder on generate's new defaults (the matrix-vector kernel on).
#   GPU 1 (cores 4-31): issue 15: prepare-data with two transfer threads per worker: 480 clips (with the eager row,
#          for the byte-identity column) and 960 clips.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/q4; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
( export CUDA_VISIBLE_DEVICES=0
  timeout 150 taskset -c 0-3 python3 bench/bench_generate.py --batch 1 --configs +fused-step,+gemv > "$L/gen1.log" 2>&1
  timeout 230 taskset -c 0-3 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd > "$L/e2e.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  mkdir -p /tmp/prep/videos /tmp/prep2/videos
  [ -f /tmp/prep/videos/video_011.mp4 ] || taskset -c 4-31 python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 12 119); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
  for i in $(seq 0 239); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep2/videos/video_$(printf %03d $i).mp4; done
  timeout 170 taskset -c 4-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 16 \
    --budget-s 120 --encode-iters 2 --read-clips 32 --rows "procs,procs+fast" > "$L/prep480.log" 2>&1
  timeout 110 taskset -c 4-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep2 --videos 240 --decode-workers 16 \
    --budget-s 60 --encode-iters 1 --read-clips 16 --rows "procs+fast" > "$L/prep960.log" 2>&1 ) &
wait
for f in gen1 e2e prep480 prep960; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9].*(grid|GPU|H200|clips|bf16|load)|rror|Traceback|startup|phases" "$L/$f.log" | tail -24; done
cp $L/*.log "$OUT"/ 2>/dev/null
