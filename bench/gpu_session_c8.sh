#!/usr/bin/env bash
# Device call c8 (2026-12-01, seventh session), one H200, carrying .gpu4. Issue 13: the DiT FP8 quantizers with a fast
# division and a GELU table (must give the same values), fast accumulation; each and all, in the guided step too.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c8; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fp8.py tests/test_dd_fused.py > $L/tier.log 2>&1
tail -3 $L/tier.log; cp $L/*.log "$OUT"/
timeout 360 python3 bench/bench_dd_fp8_speedups.py --steps 3 > $L/fp8.log 2>&1
cp $L/*.log "$OUT"/; grep -vE "Warning|warn\(" $L/fp8.log | tail -60
