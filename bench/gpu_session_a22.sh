#!/usr/bin/env bash
# Nineteenth session, one H200 carrying .gpu4 (no FlashAttention-4, no NeMo bundle; ~8 min). Issue 13, the exact
# bf16 decode on the CUDA matrix-vector kernel (gemv_cuda.gemv_bf16, --decode-bf16-kernel fused), and issue 19:
#   1. the GPU test tier, every test but the 4B recipe (which needs the NeMo bundle): the fusion test now covers the
#      bf16 kernel; the Triton decode attention's write-path test runs in its final form for the first time; the
#      FA4 test skips without the package;
#   2. bench_gemv_cuda.py --bf16: per 4B shape the Triton bf16 kernel with PDL against the CUDA one (36 block
#      choices), and a layer's chain;
#   3. the batch-1 decode, 7,680 tokens after a 2-frame prompt: +pdl (generate's exact default) against +bf16-fused,
#      twice each in turn, 32-token exactness check.
# Prediction: all pass; the CUDA bf16 products 0-8% faster than Triton's (~4.0 TB/s now); the decode 439 -> ~455-480
# tokens/s.
# Ran at commit 95ec2e4 (call 9 of the session): the bf16 CUDA kernel measured slower and was removed after it, with
# bench_gemv_cuda.py --bf16 and bench_generate.py's +bf16-fused (BENCHMARKS.md, issue 13, nineteenth session).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 240 python3 bench/gpu_tier_run.py cuda_graph cudnn tokenizer int8 triton_decode top_p dd_ fa4 copy_to_device \
  > "$OUT/tier.log" 2>&1
echo "tier rc=$?"
sed -n '/^GPU test tier on/,$p' "$OUT/tier.log" | cut -c1-400
timeout 150 python3 bench/bench_gemv_cuda.py --bf16 > "$OUT/gemv_bf16.log" 2>&1
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/gemv_bf16.log" | tail -16
timeout 200 python3 bench/bench_generate.py --batch 1 --bucket 0 --check 32 --configs +pdl,+bf16-fused,+pdl,+bf16-fused \
  > "$OUT/gen.log" 2>&1
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/gen.log" | tail -8
