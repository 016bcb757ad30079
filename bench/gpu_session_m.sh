#!/usr/bin/env bash
# Device call 5 of the 2026-11-30 afternoon session, nvidia-h200-x2, carrying .gpu4: issue 15, the fast tokenizer
# with only the un-patcher kept eager (opaque) and the patcher compiled (GPU 0); prepare-data rows (GPU 1).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/m5; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
( export CUDA_VISIBLE_DEVICES=0
  timeout 150 python3 bench/bench_tokenizer.py --budget-s 120 --rows "eager:4,fast:4,fast:8" > "$L/tok.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  mkdir -p /tmp/prep/videos
  [ -f /tmp/prep/videos/video_011.mp4 ] || python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 12 119); do cp -n /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
  timeout 200 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 16 --budget-s 400 \
    --encode-iters 1 --rows "procs+fast,2 workers+fast" > "$L/prep.log" 2>&1 ) &
wait
for f in tok prep; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9].*(grid|GPU|H200|clips)|rror|Traceback|skipped" "$L/$f.log" | tail -20; done
cp $L/*.log "$OUT"/ 2>/dev/null
