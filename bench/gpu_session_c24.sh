#!/usr/bin/env bash
# Twenty-first session, one H200 carrying .gpu4 (~5 min). Issue 13: speculative decoding with the verify attention
# as compiled flex_attention beside the GEMM attention of call b24 (3.6 / 4.2 / 5.6 ms a forward alone at L = 16 /
# 32 / 64; 4.6 / 5.9 / 8.5 ms a forward in the decode).
# Predictions: flex 2.7-3.1 ms alone at every L (the scores never written; the products ~2.1-2.4 ms at 17-65 rows,
# the compiled small ops ~0.4 ms), so a forward in the decode ~3.7-4.3 ms.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 540 python3 bench/bench_speculative.py --windows 16,32,64 --attentions gemm,flex > "$OUT/speculative.log" 2>&1
echo "rc=$?"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/speculative.log" | tail -32 | cut -c1-300
