#!/usr/bin/env bash
# Device call 1 of the 2026-11-30 late session, nvidia-h200-x2, carrying .gpu4. Issue 13 on two GPUs:
#   1. the whole generate under torchrun (TP=2 AR model): dd (the diffusion decoder's guidance split over both GPUs)
#      and dd-nosplit (the decoder on GPU 0 alone), each a fresh torchrun;
#   2. what a process's first decoder call pays (no warm-up, 4 steps): the TorchScript CV8x8x8 decoder vs the eager
#      one, on GPU 0, reusing the folders of 1.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/v1; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
nvidia-smi -L
timeout 400 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dd-nosplit --nproc 2 > "$L/e2e2.log" 2>&1
D=/tmp/e2e/checkpoints
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 bench/bench_diffusion_decoder.py --cold --steps 4 --configs resident,eager-cv \
  --decoder-dir $D/Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p --tokenizer-dir $D/Cosmos-Tokenize1-CV8x8x8-720p \
  > "$L/cold.log" 2>&1
for f in e2e2 cold; do echo "=== $f"; grep -E "^\||^#|rror|Traceback" "$L/$f.log" | tail -30; done
cp $L/*.log "$OUT"/ 2>/dev/null
