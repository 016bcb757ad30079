#!/usr/bin/env bash
# Nineteenth session, one H200 carrying .gpu4 (no FlashAttention-4, no NeMo bundle; ~5 min). Issue 13 / 19:
#   1. the GPU test tier at the final code of the eighteenth session, every test but the 4B recipe (which needs the
#      NeMo bundle) -- the Triton decode attention's write-path test had not yet run in its final form; the FA4 test
#      skips without the package;
#   2. the batch-1 decode at that code: bf16 (+pdl, generate's exact default) and int8 (+int8-fused), 32-token check.
# Prediction: every test passes; bf16 ~440 tokens/s, int8 ~660-670.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 300 python3 bench/gpu_tier_run.py cuda_graph cudnn tokenizer int8 triton_decode top_p dd_ fa4 copy_to_device \
  > "$OUT/tier.log" 2>&1
echo "tier rc=$?"
sed -n '/^GPU test tier on/,$p' "$OUT/tier.log"
timeout 200 python3 bench/bench_generate.py --batch 1 --bucket 0 --check 32 --configs +pdl,+int8-fused \
  > "$OUT/gen.log" 2>&1
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/gen.log" | tail -8
