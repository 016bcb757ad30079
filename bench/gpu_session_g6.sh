#!/usr/bin/env bash
# Device call 7 of the 2026-12-01 (fifth) session, one H200, carrying .gpu4. Issue 13 (the default bf16 decode):
# call c6's sweep lead, 4 x 2,048 blocks for four bf16 products (+pdl-blocks), against +pdl, twice each in one process.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/g6; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
timeout 400 python3 bench/bench_generate.py --batch 1 --configs +pdl,+pdl-blocks,+pdl,+pdl-blocks --check 0 2>&1 \
  | grep -vE "Warning|warn\(|pynvml" | tail -14 | tee "$L/gen.log"
cp $L/*.log "$OUT"/
