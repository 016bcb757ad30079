#!/usr/bin/env bash
# Twenty-first session, one H200 carrying .gpu4 (~5 min). Issue 13: speculative decoding of the 4B again, after call
# a24 found the verify forward at 6.5-7.2 ms in a graph (SDPA under a mask) and 17-21 ms a forward in the eager
# decode: now the forward is replayed from CUDA graphs in the decode and uses the GEMM attention by default.
# Predictions: the forward alone with the GEMM attention 2.9-3.6 ms (call c23: 3.4 ms at M = 8); a forward in the
# decode +0.6-1.2 ms (accept/reject 0.4-0.8 ms, the host sync); so at a24's random-weight rates (2.0-3.4 tokens a
# forward) the decode at 10-16 s against the one-token decoder's 17.6 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 480 python3 bench/bench_speculative.py --windows 16,32,64 > "$OUT/speculative.log" 2>&1; echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/speculative.log" | tail -30 | cut -c1-300
