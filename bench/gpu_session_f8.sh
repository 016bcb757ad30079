#!/usr/bin/env bash
# Device call f8 (2026-12-01, seventh session), one H200, carrying .gpu4. Issue 13: the AR prefill's first call by
# SDPA backend order, fresh processes (bench/bench_prefill_first.py).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/f8; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 400 python3 bench/bench_prefill_first.py > $L/prefill.log 2>&1; cp $L/*.log "$OUT"/; cat $L/prefill.log | tail -8
