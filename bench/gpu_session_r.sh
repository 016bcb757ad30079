#!/usr/bin/env bash
# Device call 1 of the 2026-11-30 night session, nvidia-h200-x2, carrying .gpu4.
#   GPU 0 (cores 0-3): issue 13: generate's setup step by step (bench/gpu_setup_profile.sh: does refusing Megatron's
#          import-time extension build take setup from ~20 s to ~2 s?), then the whole generate with the diffusion
#          decoder (one image -> one 33-frame 640x1024 video).
#   GPU 1 (cores 4-31): issue 15: prepare-data on 960 clips with the transfer threads releasing the host frames
#          (bench/gpu_next_issue15.sh), then 480 clips with the eager row (byte identity).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/r1; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.mem,temperature.gpu --format=csv
( export CUDA_VISIBLE_DEVICES=0
  timeout 300 bash bench/gpu_setup_profile.sh > "$L/setup.log" 2>&1
  timeout 250 taskset -c 0-3 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd > "$L/e2e.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  mkdir -p /tmp/prep/videos /tmp/prep2/videos
  [ -f /tmp/prep/videos/video_011.mp4 ] || taskset -c 4-31 python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 12 119); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
  for i in $(seq 0 239); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep2/videos/video_$(printf %03d $i).mp4; done
  timeout 150 taskset -c 4-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep2 --videos 240 --decode-workers 16 \
    --budget-s 60 --encode-iters 1 --read-clips 16 --rows "procs+fast" > "$L/prep960.log" 2>&1
  timeout 200 taskset -c 4-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 16 \
    --budget-s 120 --encode-iters 1 --read-clips 16 --rows "procs,procs+fast" > "$L/prep480.log" 2>&1 ) &
wait
cat "$L/setup.log" | head -120
for f in e2e prep960 prep480; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9].*(grid|GPU|H200|clips|bf16|load)|rror|Traceback|startup|phases" "$L/$f.log" | tail -24; done
cp $L/*.log "$OUT"/ 2>/dev/null
