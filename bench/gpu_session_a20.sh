#!/usr/bin/env bash
# Seventeenth session (2026-12-02), one H200, carrying .gpu4 (~7 min). Issue 13: the int8 decode products with the
# norms, residual adds and SwiGLU folded into the CUDA kernel (inference/fused_int8.py, --decode-int8-kernel fused).
#   1. the GPU tier's two int8 kernel tests (the fusions against gemv_cuda.reference; the plain kernel unchanged)
#   2. bench_gemv_fused.py: exactness, block sweep per fused shape, a layer's chain fused against unfused
#   3. bench_generate.py: +int8-cuda against +int8-fused, twice each (7,680 tokens after a 2-frame prompt), and the
#      fused step's graph profile
# Prediction: the chain loses the 3 small kernels a layer (add+norm 2 x 2.1 us, SwiGLU 1.4 us) for ~1 us more in
# the products, so ~-4 us a layer, ~-60 us a token: 637 -> ~660 tokens/s, ~-0.4 s of a video.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
nvidia-smi --query-gpu=name,clocks.max.sm,memory.used --format=csv > "$OUT/gpu.txt" 2>&1
timeout 150 python3 bench/gpu_tier_run.py int8_cuda > "$OUT/tier.log" 2>&1; echo "tier rc=$?" >> "$OUT/tier.log"
timeout 200 python3 bench/bench_gemv_fused.py > "$OUT/fused.log" 2>&1; echo "fused rc=$?" >> "$OUT/fused.log"
timeout 330 python3 bench/bench_generate.py --batch 1 --configs +int8-cuda,+int8-fused,+int8-cuda,+int8-fused \
  > "$OUT/gen.log" 2>&1; echo "gen rc=$?" >> "$OUT/gen.log"
[ "$SECONDS" -lt 470 ] && timeout $((580 - SECONDS)) python3 bench/bench_generate.py --batch 1 --configs +int8-fused \
  --check 0 --graph-profile 100 > "$OUT/prof.log" 2>&1
tail -5 "$OUT/tier.log"; cat "$OUT/fused.log" | grep -v Warning; grep -E "^\|" "$OUT/gen.log"
