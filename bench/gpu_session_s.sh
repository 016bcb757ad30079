#!/usr/bin/env bash
# Device call 2 of the 2026-11-30 night session, nvidia-h200-x2, carrying .gpu4. Issues 12, 15 and 13.
#   GPU 0 (cores 0-7): 4B batch 1, 5,120 -> 7,680: +gemv (last session's default), +glu (fc1 and SwiGLU in one
#          kernel), +pdl (programmatic dependent launch), +pdl-write, then +gemv and +pdl again (A/B in one process),
#          with the exactness check and a CUDA-graph timeline profile (100 replays) of each.
#   GPU 1 (cores 8-31): prepare-data on 960 clips with and without the recycled page-locked frame slots, then the
#          whole generate with the diffusion decoder on the new defaults (glu + pdl).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/s2; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
python3 -c "import torch._inductor.config as c; print('inductor enable_pdl:', hasattr(c.triton, 'enable_pdl'))"
( export CUDA_VISIBLE_DEVICES=0
  timeout 330 taskset -c 0-7 python3 bench/bench_generate.py --batch 1 --configs +gemv,+glu,+pdl,+pdl-write,+gemv,+pdl \
    --graph-profile 100 > "$L/gen1.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  mkdir -p /tmp/prep/videos /tmp/prep2/videos
  [ -f /tmp/prep/videos/video_011.mp4 ] || taskset -c 8-31 python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 0 239); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep2/videos/video_$(printf %03d $i).mp4; done
  timeout 260 taskset -c 8-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep2 --videos 240 --decode-workers 16 \
    --budget-s 200 --encode-iters 1 --read-clips 16 --rows "procs+fast,procs+fast no-slots" > "$L/prep960.log" 2>&1
  timeout 250 taskset -c 8-31 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd > "$L/e2e.log" 2>&1 ) &
wait
for f in gen1 prep960 e2e; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9#].*(grid|GPU|H200|profile|load|clips|slots)|rror|Traceback" "$L/$f.log" | tail -150; done
cp $L/*.log "$OUT"/ 2>/dev/null
