#!/usr/bin/env bash
# (Run at 9999d5b; the review mend after it dropped --attentions and the SDPA verify option.)
# Twenty-first session, one H200 carrying .gpu4 (~6 min). Issue 13: speculative decoding after call b24 (GEMM
# attention, forwards from graphs, accept/reject eager with a host read per forward: 4.6 / 5.9 / 8.5 ms a forward in
# the decode at L = 16 / 32 / 64 against 3.6 / 4.2 / 5.6 ms for the forward alone). Now the forward and the
# accept/reject are one graph and the host reads n one step late; and the verify attention may be compiled
# flex_attention.
# Predictions: flex 2.7-3.1 ms alone at every L; a step in the decode = the forward alone + ~0.2-0.4 ms (the
# accept/reject's kernels, no host gap): ~3.9 / 4.5 / 6.0 ms with the GEMM attention, ~3.0-3.5 ms with flex.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 560 python3 bench/bench_speculative.py --windows 16,32,64 --attentions gemm,flex > "$OUT/speculative.log" 2>&1
echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/speculative.log" | tail -32 | cut -c1-300
