#!/usr/bin/env bash
# Prepared for the next H200 session (not run yet): issue 12's open measurements in one call on nvidia-h200-x2,
# carrying .gpu4 (megatron_core, PyAV and decord wheels).
#   GPU 0: batch 1: +fused-step against +fused-write (the Triton kernel writes the step's K/V itself), with profiles;
#          then batch 4 and 8 with the fused step (aggregate tokens/s).
#   GPU 1: the fast tokenizer as shipped at batch 1 (the one row issue 15's table lacks).
#   Then both GPUs: TP=2 with the fused step (4B), and its greedy agreement with TP=1.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/n1; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
( export CUDA_VISIBLE_DEVICES=0
  timeout 170 python3 bench/bench_generate.py --batch 1 --configs +fused-step,+fused-write --profile 16 > "$L/gen1.log" 2>&1
  timeout 150 python3 bench/bench_generate.py --batch 4,8 --configs +fused-step --check 0 > "$L/gen48.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 120 python3 bench/bench_tokenizer.py --rows "eager:1,fast:1" > "$L/tok1.log" 2>&1
  timeout 120 python3 bench/bench_generate.py --greedy --batch 1 --max-new-tokens 1024 --configs +fused-step \
    --save-tokens $L/tp1.pt > "$L/greedy1.log" 2>&1 ) &
wait
timeout 150 torchrun --nproc-per-node 2 bench/bench_generate.py --tp 2 --batch 1 --configs +sample-in-graph,+fused-step \
  > "$L/tp2.log" 2>&1
timeout 90 torchrun --nproc-per-node 2 bench/bench_generate.py --tp 2 --greedy --batch 1 --max-new-tokens 1024 \
  --configs +fused-step --compare $L/tp1.pt > "$L/tp2greedy.log" 2>&1
for f in gen1 gen48 tok1 tp2 tp2greedy; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9].*(grid|GPU|H200|agree)|rror|Traceback" "$L/$f.log" | tail -30; done
cp $L/*.log "$OUT"/ 2>/dev/null
