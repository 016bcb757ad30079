#!/usr/bin/env bash
# Device call 2 of the 2026-11-30 night session, nvidia-h200-x2, carrying .gpu4. Issue 12 and 13.
#   GPU 0 (cores 0-7): 4B batch 1, 5,120 -> 7,680: +gemv (last session's default), +glu (fc1 and SwiGLU in one
#          kernel), +pdl (programmatic dependent launch), +pdl-write, then +gemv and +pdl again (A/B in one process),
#          with the exactness check and a CUDA-graph timeline profile (100 replays) of each.
#   GPU 1 (cores 8-31): the whole generate with the diffusion decoder on the new defaults (glu + pdl), with the
#          compile/capture time of the AR stage printed.
#   Then both GPUs: TP=2 with +pdl and +gemv-fused.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/s2; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
python3 -c "import torch._inductor.config as c; print('inductor enable_pdl:', hasattr(c.triton, 'enable_pdl'))"
( export CUDA_VISIBLE_DEVICES=0
  timeout 330 taskset -c 0-7 python3 bench/bench_generate.py --batch 1 --configs +gemv,+glu,+pdl,+pdl-write,+gemv,+pdl \
    --graph-profile 100 > "$L/gen1.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 300 taskset -c 8-31 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd > "$L/e2e.log" 2>&1 ) &
wait
timeout 150 torchrun --nproc-per-node 2 bench/bench_generate.py --tp 2 --batch 1 --configs +pdl,+gemv-fused --check 0 \
  > "$L/tp2.log" 2>&1
for f in gen1 e2e tp2; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9#].*(grid|GPU|H200|profile|load)|rror|Traceback" "$L/$f.log" | tail -150; done
cp $L/*.log "$OUT"/ 2>/dev/null
