#!/usr/bin/env bash
# Twenty-fifth session, call a38 (one H200 carrying .gpu4, ~4 min). Issue 13:
#   1. GPU tier for the sampling and decode kernels (the twenty-fourth session moved sample_kernel's tile arithmetic
#      back into tile_kernel and added sampling.fresh_generators, neither yet run on a GPU): top-p kernels, the
#      nucleus and coupled kernels, CUDA-graph decode, greedy speculative decoding, the int8 kernels, the Triton
#      decode attention.
#   2. the kernels of 20 whole speculative steps at L = 63 (cuBLAS products; where the step's 3.4 ms go now).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 300 python3 bench/gpu_tier_run.py top_p nucleus coupled cuda_graph speculative_decoding int8 triton_decode \
  2>&1 | grep -vE "Warning|warn\(" | tail -14 | tee "$OUT/tier.log"
timeout $((570 - SECONDS)) python3 bench/bench_speculative.py --runs "" --profile 63 > "$OUT/profile.log" 2>&1
echo "profile rc=$?"; grep -vE "Warning|warn\(|pynvml" "$OUT/profile.log" | tail -40 | cut -c1-220
exit 0
