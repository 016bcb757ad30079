#!/usr/bin/env bash
# Prepared for the next session (not run: the evening's device time ran out), one H200 of nvidia-h200-x2, carrying
# .gpu4: issue 15: prepare-data on 960 clips after the transfer threads release the host frames (the encode loop no
# longer unmaps each unit's shared memory); the table's "encode loop other s" column says what the loop's timers miss.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/r5; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export CUDA_VISIBLE_DEVICES=0
mkdir -p /tmp/prep/videos /tmp/prep2/videos
[ -f /tmp/prep/videos/video_011.mp4 ] || python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
for i in $(seq 0 239); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep2/videos/video_$(printf %03d $i).mp4; done
timeout 150 python3 bench/bench_prepare_data.py --workdir /tmp/prep2 --videos 240 --decode-workers 16 \
  --budget-s 60 --encode-iters 1 --read-clips 8 --rows "procs+fast" > "$L/prep960.log" 2>&1
grep -E "^\||^[A-Za-z0-9].*(H200|clips)|rror|Traceback|startup|phases" "$L/prep960.log" | tail -12
cp $L/*.log "$OUT"/ 2>/dev/null
