#!/usr/bin/env bash
# Runs at commits cabe19d (a10) and c91b0f8 (c10): the defer_load switch it flips was removed after call c10.
# Ninth session (2026-12-01), one H200, carrying .gpu4. Issue 13: the diffusion decoder's background load started
# after the AR prefill (defer_load) against the old start in its constructor, as a same-machine A/B; int8 + FP8, the
# guide's 9-frame prompt. Runs: warm (a fresh machine's compiles, discarded), now, old, now, old. The columns to read
# are prefill and AR decode (the load now runs beside the decode only); the bench also prints when main()'s slow
# garbage collections ran (seconds since main() started; the load column is the first stretch of main()).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a10; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
run() { timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --timeout 90 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
P=nemo_cosmos_ar/inference/pipeline.py
old() { sed -i 's/            defer_load=True,  # from the end/            defer_load=False,  # from the end/' $P; }
new() { sed -i 's/            defer_load=False,  # from the end/            defer_load=True,  # from the end/' $P; }
run warm; run now1; old; run old1; new; run now2; old; run old2; new
grep -c "defer_load=True" $P
for f in warm now1 old1 now2 old2; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" | tail -2; done
