#!/usr/bin/env bash
# Ninth session (2026-12-01), one H200, carrying .gpu4. Issue 13: which part of the diffusion decoder's background
# load slows a graph-replay decode beside it (call a10: the decode 13.3 -> 16.0 s when the load fully overlaps it).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b10; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
timeout 300 python3 bench/bench_load_interference.py --work-dir /tmp/e2e --modes pageable,staged,jit,decoder > "$L/interference.log" 2>&1
cp $L/*.log "$OUT"/
tail -3 $L/setup.log; grep -vE "Warning|warn\(|^\s*$" $L/interference.log | tail -12
