#!/usr/bin/env bash
# (Ran at 82360d8: attention_cuda.py and the cuda modes were removed after calls a21-b21 measured them slower.)
# Eighteenth session, second call (one H200, carrying .gpu4, ~2 min). Issue 13: call a21 found the CUDA decode
# attention correct but slower than Triton (24-30 us against 19 at 12,800 slots): each warp loaded a tile, then
# computed it, with nothing in flight meanwhile. Now two register buffers (the next tile's loads before this tile's
# maths). The tier test again, then the attention alone as generate calls it (bucket 0), with the choices' sweep.
# Also the scores reduce-scattered over the half-warp (rs: fewer shuffles and exp2). Prediction: 12,800 slots
# 24 -> ~16 us at the best choice; below Triton's 19.2.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/gpu_tier_run.py cuda_decode_attention > "$OUT/tier.log" 2>&1
grep -E "^\| test_|Error|error" "$OUT/tier.log" | head -20
timeout 150 python3 bench/bench_decode_attention.py --batch 1 --bucket 0 --lengths 5120,6144,9216,12800 \
  --modes triton-w,cuda-w --cuda-sweep > "$OUT/attn.log" 2>&1
grep -E "^\| 1 \| [0-9]+ \| 12800 \||best|rror" "$OUT/attn.log"
for n in 5120 9216 12800; do grep -E "^\| 1 \| $n \| cuda-w \|" "$OUT/attn.log" | sort -t'|' -k8 -n | head -6; done
