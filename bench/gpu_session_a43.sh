#!/usr/bin/env bash
# A record of the call: the in-kernel combine it measured (commit 1622054) was removed after it, so steps 1 and 2 now
# run the earlier tests and sweep.
# Twenty-sixth session, call a43 (one H200 carrying .gpu4, ~8 min, no FA4 needed). Issue 13, the speculative step:
#   1. GPU tier: the verify attention (now combining its splits in the split kernel's last program, against the
#      second launch; graph replays leave the counters at zero) and the nucleus search (TILE 4,096 now).
#   2. bench_verify_parts.py --parts attention: the two combines at M = 16 / 32 / 64, 5,120 / 12,700 slots.
#   3. bench_speculative at L = 63 / 31 / 15 on the committed defaults (a40: 3.33 / 2.95 / 2.84 ms a step).
# Predictions: the in-kernel combine -4 to -6 us a layer (the 116 us a step of a38's combine launches less a ~2 us
# tail in the split kernel): a step -0.06 to -0.09 ms; the search's TILE -0.02 ms a step at L = 63 (a42).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/gpu_tier_run.py verify_attention nucleus 2>&1 | grep -vE "Warning|warn\(|pynvml" | tail -12
timeout 120 python3 bench/bench_verify_parts.py --parts attention 2>&1 | grep -vE "Warning|warn\(|pynvml" \
  | tee "$OUT/verify_parts.log" | grep -E "^\| [0-9]"
timeout $((580 - SECONDS)) python3 bench/bench_speculative.py --runs 63:triton,31:triton,15:triton 2>&1 \
  | grep -vE "Warning|warn\(|pynvml" | tee "$OUT/speculative.log" | grep -E "^\||^one-token|^L=" | head -8 | cut -c1-300
exit 0
