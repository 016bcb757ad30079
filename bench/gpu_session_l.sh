#!/usr/bin/env bash
# Device call 4 of the 2026-11-30 afternoon session, nvidia-h200-x2, carrying .gpu4 (megatron_core, PyAV, decord).
#   GPU 0: issue 15: the fast tokenizer with the fused Haar transforms as opaque eager ops (fake kernels fixed).
#   GPU 1: issue 15: prepare-data end to end on 120 H.264 720p files (12 videos written here with PyAV, each
#          present 10 times: 480 disjoint clips), 16 decode processes.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/l4; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
( export CUDA_VISIBLE_DEVICES=0
  timeout 230 python3 bench/bench_tokenizer.py --budget-s 170 --best-batch 8 \
    --rows "eager:4,fast:4,fast:1,fast:best,fast-compiled-Haar:4" > "$L/tok.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  mkdir -p /tmp/prep/videos
  python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; from pathlib import Path; \
b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 12 119); do cp /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
  timeout 200 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 16 --budget-s 150 \
    --rows "procs+fast,2 workers+fast" > "$L/prep.log" 2>&1 ) &
wait
tail -2 $L/write.log
for f in tok prep; do echo "=== $f"; grep -E "^\||^#|^[A-Za-z0-9].*(grid|GPU|H200|clips|tokens)|rror|Traceback" "$L/$f.log" | tail -30; done
cp $L/*.log "$OUT"/ 2>/dev/null; ls "$OUT"
