#!/usr/bin/env bash
# Prepared in the twenty-fifth session, not yet run (its device time ran out). One H200 carrying .gpu4, ~5 min, no FA4
# needed. Issue 13, the speculative step's two launch-choice sweeps at the windows generate suggests:
#   1. bench_nucleus.py: the top-p search (6 launches; its 4 rounds took 110 us a step at L = 63, a38) over TILE
#      {512, 1024, 2048, 4096} x warps {2, 4, 8} at 16 / 32 / 64 rows (default 2,048 x 4).
#   2. bench_verify_parts.py --parts attention: the verify attention at M = 16 / 32 / 64 (a26 / a27 swept M = 17 /
#      33 / 65, whose row counts were padded) with 128-row blocks on 4 and 8 warps beside the default 64 / 4.
# Predictions: a smaller TILE or fewer warps -10 to -50 us a step (more programs in flight for the search's serial
# reductions); 128-row blocks halve the cache re-reads at M = 64 (4 -> 2 row blocks a group), maybe -5 to -15 us a
# layer at 12,700 slots. Whatever wins goes into nucleus_kernel.TILE / NUM_WARPS and verify_kernel.DEFAULTS, then
# bench_speculative (~3 min) for the step.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 200 python3 bench/bench_nucleus.py 2>&1 | grep -vE "Warning|warn\(|pynvml" | tee "$OUT/nucleus.log" | tail -20
timeout $((560 - SECONDS)) python3 bench/bench_verify_parts.py --parts attention 2>&1 \
  | grep -vE "Warning|warn\(|pynvml" > "$OUT/verify_parts.log"
grep -E "^best" "$OUT/verify_parts.log"  # every row is in the log
exit 0
