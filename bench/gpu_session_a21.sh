#!/usr/bin/env bash
# (Ran at 82360d8: attention_cuda.py and the cuda modes were removed after calls a21-b21 measured them slower.)
# Eighteenth session, first call (one H200, carrying .gpu4, ~5 min). Issue 13: the decode attention as CUDA kernels
# cut by the filled length (inference/attention_cuda.py, --decode-attention cuda) against the Triton split-K kernel.
# 1. the GPU tier's test of the new kernels (fp32 reference, writes, PDL, graph replay);
# 2. the attention alone as the step calls it (write + PDL), the whole cache attended (generate's bucket 0), and the
#    CUDA kernels' warps/unroll/waves choices;
# 3. the whole decode (7,680 tokens after a 2-frame prompt, bucket 0 as generate): +int8-fused (Triton attention)
#    against +int8-fused-cattn, two rounds, the first with the exactness check.
# Prediction: the attention 11.7 / 15.1 / 19.6 -> ~8.8 / 11.7 / 15.2 us a layer at 6,144 / 9,216 / 12,800 slots;
# the decode +3-5% (631 -> ~655 tokens/s).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/gpu_tier_run.py cuda_decode_attention > "$OUT/tier.log" 2>&1
grep -E "^\||MEASURED|Error|error" "$OUT/tier.log" | head -20
timeout 150 python3 bench/bench_decode_attention.py --batch 1 --bucket 0 --lengths 5120,6144,9216,12800 \
  --modes triton,triton-w,cuda,cuda-w --cuda-sweep > "$OUT/attn.log" 2>&1
grep -E "^\||best|rror" "$OUT/attn.log" | grep -v "| cuda-w | [248] | [248] | [2346].0 |" | head -40
grep -E "\| cuda-w \|" "$OUT/attn.log" | sort -t'|' -k8 -n | head -12
c=+int8-fused,+int8-fused-cattn
timeout 200 python3 bench/bench_generate.py --batch 1 --bucket 0 --configs $c > "$OUT/gen1.log" 2>&1
grep -E "^\|" "$OUT/gen1.log"; tail -3 "$OUT/gen1.log"
timeout 200 python3 bench/bench_generate.py --batch 1 --bucket 0 --check 0 --configs $c,$c > "$OUT/gen2.log" 2>&1
grep -E "^\|" "$OUT/gen2.log"; tail -3 "$OUT/gen2.log"
