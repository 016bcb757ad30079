#!/usr/bin/env bash
# Device call 2 of the 2026-11-30 evening session, nvidia-h200-x2, carrying .gpu4.
#   GPU 0 (cores 0-3): issue 12 at batch 1: +fused-step against +gemv and +gemv-fused (norms, SwiGLU and residual
#          adds folded into the matrix-vector kernel); a greedy TP=1 run that saves its tokens.
#   GPU 1 (cores 4-31): issue 15: prepare-data end to end after the pinned host-to-device copy and the forkserver
#          decode processes; each row recompiles from inductor's disk cache as a fresh process would.
#   Then both GPUs: TP=2 with +gemv-fused (4B, 12B) and TP=2 vs TP=1 greedy agreement.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/o2; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
( export CUDA_VISIBLE_DEVICES=0
  timeout 200 taskset -c 0-3 python3 bench/bench_generate.py --batch 1 --configs +fused-step,+gemv,+gemv-fused > "$L/gen1.log" 2>&1
  timeout 90 taskset -c 0-3 python3 bench/bench_generate.py --greedy --batch 1 --max-new-tokens 1024 --configs +gemv-fused \
    --check 0 --save-tokens $L/tp1.pt > "$L/greedy1.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  mkdir -p /tmp/prep/videos
  [ -f /tmp/prep/videos/video_011.mp4 ] || taskset -c 4-31 python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
  for i in $(seq 12 119); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
  timeout 290 taskset -c 4-31 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 16 \
    --budget-s 200 --encode-iters 2 --read-clips 32 --rows "procs,procs+fast,2 workers+fast" > "$L/prep.log" 2>&1 ) &
wait
timeout 120 torchrun --nproc-per-node 2 bench/bench_generate.py --tp 2 --batch 1 --configs +fused-step,+gemv-fused --check 0 \
  > "$L/tp2.log" 2>&1
timeout 80 torchrun --nproc-per-node 2 bench/bench_generate.py --tp 2 --greedy --batch 1 --max-new-tokens 1024 \
  --configs +gemv-fused --check 0 --compare $L/tp1.pt > "$L/tp2greedy.log" 2>&1
for f in gen1 greedy1 prep tp2 tp2greedy; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9].*(grid|GPU|H200|clips|agree|equal)|rror|Traceback|skipped|stages|startup|phases" "$L/$f.log" | tail -24; done
cp $L/*.log "$OUT"/ 2>/dev/null
