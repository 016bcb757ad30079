#!/usr/bin/env bash
# Prepared in the eighth session (2026-12-01) for a later one-H200 call, carrying .gpu4. Issue 13: two after-init
# changes measured as one same-machine A/B (bench/after_init_old.patch undoes both):
#  (1) the DV tokenizer that the diffusion decoder makes unneeded is released without gc.collect() + empty_cache()
#      (~0.27 s on the 2-core CPU machine; "other" 0.4 -> 0.1-0.2 s in the CPU smoke run);
#  (2) the decoder's frames stay on the GPU and become uint8 there, and to_uint8_frames works in place (write
#      -0.25 s on the CPU machine; the 448 MB float copy of 57 frames becomes a 65 MB uint8 copy of 33).
# Runs: warm (a fresh machine's compiles, discarded), now, old, now, old. int8 + FP8, the guide's 9-frame prompt;
# "other", "CV decode" and "write" are the columns to read; the bench also prints main()'s garbage collections.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/ngc; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
run() { timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --timeout 90 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
P=bench/after_init_old.patch
run warm; run now1; patch -p1 < $P > $L/patch.log; run old1; patch -R -p1 < $P >> $L/patch.log; run now2
patch -p1 < $P >> $L/patch.log; run old2; patch -R -p1 < $P >> $L/patch.log
for f in warm now1 old1 now2 old2; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" | tail -2; done
