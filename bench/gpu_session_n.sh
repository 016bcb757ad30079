#!/usr/bin/env bash
# Device call 1 of the 2026-11-30 evening session, nvidia-h200-x2, carrying .gpu4.
#   GPU 0 (cores 0-3): issue 12 at batch 1: +fused-step, +fused-write, and the Triton matrix-vector kernel (+gemv,
#          +gemv-write); then batch 4 and 8 with the fused step (cuBLAS there).
#   GPU 1 (cores 4-31): issue 15: the fast tokenizer at batch 1 (the missing row); then prepare-data end to end with
#          decoding started before the tokenizer load (120 files, 480 clips), 1 and 2 workers, and the eager row for
#          the byte-identity column.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/n1; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
{ nproc; df -h /dev/shm | tail -1; ls /usr/lib/x86_64-linux-gnu/libnvcuvid* 2>&1 | head -2; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } > $L/env.log 2>&1
( export CUDA_VISIBLE_DEVICES=0
  timeout 270 taskset -c 0-3 python3 bench/bench_generate.py --batch 1 --configs +fused-step,+fused-write,+gemv,+gemv-write > "$L/gen1.log" 2>&1
  timeout 200 taskset -c 0-3 python3 bench/bench_generate.py --batch 4,8 --configs +fused-step,+fused-write --check 0 > "$L/gen48.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 100 taskset -c 4-31 python3 bench/bench_tokenizer.py --budget-s 80 --rows "eager:1,fast:1" > "$L/tok1.log" 2>&1
  mkdir -p /tmp/prep/videos
  [ -f /tmp/prep/videos/video_011.mp4 ] || taskset -c 4-31 python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 12 119); do cp -n /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
  timeout 400 taskset -c 4-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 16 \
    --budget-s 300 --encode-iters 2 --read-clips 32 --rows "procs+fast,2 workers+fast,procs" > "$L/prep.log" 2>&1 ) &
wait
cat $L/env.log
for f in gen1 gen48 tok1 prep; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9].*(grid|GPU|H200|clips)|rror|Traceback|skipped|stages" "$L/$f.log" | tail -24; done
cp $L/*.log "$OUT"/ 2>/dev/null
