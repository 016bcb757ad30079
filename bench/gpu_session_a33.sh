#!/usr/bin/env bash
# Twenty-fourth session, call a33 (one H200 carrying .gpu4, ~6 min). Issue 13: the top-p distribution without a sort
# (nucleus_kernel: a 16-way search over the bf16 logits' bits, 6 launches) against the sort-based nucleus_probs.
#   1. GPU tier: sampling_probs (now nucleus_kernel) against the torch ops at 65 x 64,000; greedy speculative decoding
#      on CUDA graphs.
#   2. the decode alone, L = 15 / 63 with each kernel, L = 31 with the search.
# Prediction (a31: 3.06 / 3.70 ms a step at L = 15 / 63, accept/reject alone 0.222 / 0.552 ms with the sort, whose
# 16-bit segmented sort is 92-242 us): the search -0.08 ms (L = 15) and -0.25 ms (L = 63) a step.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/gpu_tier_run.py nucleus_probs speculative_decoding 2>&1 | grep -vE "Warning|warn\(" \
  | tail -12 | tee "$OUT/tier.log"
timeout $((560 - SECONDS)) python3 bench/bench_speculative.py \
  --runs 15:triton:search,15:triton:sort,63:triton:search,63:triton:sort,31:triton:search > "$OUT/speculative.log" 2>&1
echo "speculative rc=$?"
grep -E "^\||^one-token|^AR stage|^L=" "$OUT/speculative.log" | cut -c1-300
