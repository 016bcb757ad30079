#!/usr/bin/env bash
# (Run at b6336f7; accept_kernel and its bench/test parts were removed after call b25 measured it slower.)
# Twenty-second session, one H200 carrying .gpu4 (~6 min). Issue 13: the speculative step's two new Triton kernels.
# Before (call c24): a step of L = 16 cost 4.51 ms in the decode (1.97 one-token steps): the verify forward 3.61 ms
# alone, of which the GEMM attention (fp32 scores over the whole bucket) ~0.7-1.6 ms, and the accept/reject in torch
# ops (softmax, a segmented sort of 17 x 64,000, the coupling) ~0.9 ms.
# Now: verify_kernel (split-K flash attention over the filled slots, M queries per KV group) and accept_kernel (the
# nucleus by bisection over the logits' keys, p written in vocabulary order, accept test and races, one program a row).
# Predictions at L = 16: the forward alone 3.6 -> ~2.9 ms, the accept/reject alone ~0.9 -> ~0.1 ms, a step in the
# decode 4.51 -> ~3.0 ms (~1.3 one-token steps); the random weights' ~2 tokens a step then make the AR stage
# 17.6 -> ~11.5 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 170 python3 bench/gpu_tier_run.py speculative > "$OUT/tier.log" 2>&1
echo "tier rc=$?"
sed -n '/^GPU test tier on/,$p' "$OUT/tier.log" | cut -c1-400
grep -E "^MEASURED|Error|assert" "$OUT/tier.log" | head -20 | cut -c1-600
timeout 400 python3 bench/bench_speculative.py > "$OUT/speculative.log" 2>&1
echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/speculative.log" | tail -30 | cut -c1-400
