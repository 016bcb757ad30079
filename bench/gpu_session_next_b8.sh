#!/usr/bin/env bash
# Prepared in the eighth session (2026-12-01), for a later one-H200 call, carrying .gpu4. Issue 13, many-video jobs:
# where the batch-8 decode step's 3.9 ms go (calls b9/c9: 2,022-2,039 tokens/s for 8 rows, where the weights alone
# would stream in ~1.8 ms and the 8 rows' K/V in ~1.1 ms). At batch > 1 the projections are cuBLAS, not the batch-1
# matrix-vector kernel: this profile says whether a small-batch kernel would pay before one is written.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/nb8; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 500 python3 bench/bench_generate.py --batch 8 --configs +pdl --check 0 --graph-profile 30 > "$L/b8.log" 2>&1
cp $L/*.log "$OUT"/ 2>/dev/null
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/b8.log" | tail -40
