#!/usr/bin/env bash
# Device calls b8 and c8 (2026-12-01, seventh session; c8 ran it again at commit b6d275d), one H200, carrying .gpu4.
# Issue 13: the DiT's FP8 path with the GPU's e4m3 rounding in the quantizers (must give the same values), the GELU
# table, and cuBLASLt's fast accumulation (measured error).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b8; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fp8.py tests/test_dd_fused.py > $L/tier.log 2>&1
tail -3 $L/tier.log; cp $L/*.log "$OUT"/
timeout 360 python3 bench/bench_dd_fp8_speedups.py --steps 3 > $L/fp8.log 2>&1
cp $L/*.log "$OUT"/; grep -vE "Warning|warn\(" $L/fp8.log | tail -40
