#!/usr/bin/env bash
# Seventeenth session, second call (one H200, carrying .gpu4, ~3 min). Issue 13: the fused int8 step at the block
# choices call a20's sweep found (fused_int8.CONFIGS), with fc1's norm in its prologue (+int8-fused) or as a kernel
# of its own (+int8-fused-lite), against generate's unfused step (+int8-cuda); two rounds, 7,680 tokens each.
# Prediction: the chain micro-benchmark gave -0.6 us a layer (67.9 -> 67.3), so +-1% at most.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
c=+int8-cuda,+int8-fused,+int8-fused-lite
timeout 400 python3 bench/bench_generate.py --batch 1 --check 0 --configs $c,$c > "$OUT/gen.log" 2>&1
grep -E "^\|" "$OUT/gen.log"; tail -3 "$OUT/gen.log"
