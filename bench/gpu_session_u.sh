#!/usr/bin/env bash
# Device call 4 of the 2026-11-30 night session, one H200, carrying .gpu4. Issue 12 and 13 on the new defaults
# (decode attention at 4 waves, v taken as a view of the QKV product, PDL + the attention writing K/V):
#   1. 4B batch 1, 5,120 -> 7,680: +gemv (last session's default path) and +pdl-write (generate's default now), twice;
#   2. the whole generate with the diffusion decoder (generate's defaults).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/u4; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 230 python3 bench/bench_generate.py --batch 1 --configs +gemv,+pdl-write,+gemv,+pdl-write > "$L/gen1.log" 2>&1
timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd > "$L/e2e.log" 2>&1
for f in gen1 e2e; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9#].*(grid|GPU|H200|load|choices)|rror|Traceback" "$L/$f.log" | tail -30; done
cp $L/*.log "$OUT"/ 2>/dev/null
