#!/usr/bin/env bash
# Device call 3 of the 2026-11-30 night session, nvidia-h200-x2, carrying .gpu4. Issues 12 and 15.
#   GPU 0 (cores 0-7): issue 12: the Triton decode attention's launch choices swept at 6,144 / 9,216 / 12,800 filled
#          slots (the best written to a file), the fc1+SwiGLU kernel's block sweep, then 4B batch 1, 5,120 -> 7,680
#          with the best attention choice: +gemv, +pdl, +pdl-write, +glu-pdl, and +gemv/+pdl/+pdl-write again, with
#          graph profiles.
#   GPU 1 (cores 8-31): issue 15: prepare-data with frame slots, 480 clips with the eager row (byte identity), then 960
#          clips with 12 slots instead of the default 6.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/t3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
( export CUDA_VISIBLE_DEVICES=0
  timeout 150 taskset -c 0-7 python3 bench/bench_decode_attention.py --batch 1 --lengths 6144,9216,12800 --modes triton \
    --sweep --best-out $L/attn_best > "$L/attn.log" 2>&1
  cat $L/attn_best 2>/dev/null || echo "64,2,4,2" > $L/attn_best
  timeout 100 taskset -c 0-7 python3 bench/bench_gemv.py --shapes fc1,fc1-glu > "$L/gemv.log" 2>&1
  timeout 330 taskset -c 0-7 python3 bench/bench_generate.py --batch 1 --attention-config $L/attn_best \
    --configs +gemv,+pdl,+pdl-write,+glu-pdl,+gemv,+pdl,+pdl-write --graph-profile 100 > "$L/gen1.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  mkdir -p /tmp/prep/videos /tmp/prep2/videos
  [ -f /tmp/prep/videos/video_011.mp4 ] || taskset -c 8-31 python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 12 119); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
  for i in $(seq 0 239); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep2/videos/video_$(printf %03d $i).mp4; done
  timeout 240 taskset -c 8-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 16 \
    --budget-s 200 --encode-iters 1 --read-clips 8 --rows "procs,procs+fast" > "$L/prep480.log" 2>&1
  COSMOS_AR_FRAME_SLOTS=12 timeout 150 taskset -c 8-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep2 --videos 240 \
    --decode-workers 16 --budget-s 100 --encode-iters 1 --read-clips 8 --rows "procs+fast" > "$L/prep960.log" 2>&1 ) &
wait
grep -A80 "Triton kernel choices" $L/attn.log | grep -E "^\| 1 \| (6144|9216|12800) " | awk -F'|' '{print}' | sort -t'|' -k3,3n -k9,9n | awk -F'|' '{c[$3]++; if (c[$3] <= 6) print}'
grep -E "^batch|rror|Traceback" $L/attn.log | tail -5
for f in gemv gen1 prep480 prep960; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9#].*(grid|GPU|H200|profile|load|clips|slots|choices)|rror|Traceback" "$L/$f.log" | tail -120; done
cp $L/*.log $L/attn_best "$OUT"/ 2>/dev/null
