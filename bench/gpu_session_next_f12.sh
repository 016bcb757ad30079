#!/usr/bin/env bash
# Prepared in the tenth session (2026-12-02) for a later one-H200 call (~6 min), carrying .gpu4. Issue 13: the first
# guided step's unconditional pass computed while the AR model generates (DiffusionDecoder.prepare, switched by
# inference/pipeline.py EARLY_UNCOND, off in the code) as a same-machine A/B of the whole generate: int8 + FP8, the
# guide's 9-frame prompt, fresh processes: warm (discarded), then on / off three times while time is left. Read the
# AR decode (slowed by the pass beside it?) and the DiT sampling (one batch-2 pass less) as well as after init.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/f12; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
P=nemo_cosmos_ar/inference/pipeline.py
OFF='EARLY_UNCOND = False'
ON='EARLY_UNCOND = True'
run() { [ $SECONDS -lt 520 ] || return; timeout 75 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e \
  --configs dd-int8-fp8 --input video --timeout 70 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
swap $P "$OFF" "$ON"
run warm
for i in 1 2 3; do run on$i; swap $P "$ON" "$OFF"; run off$i; swap $P "$OFF" "$ON"; done
swap $P "$ON" "$OFF"
for f in warm on1 off1 on2 off2 on3 off3; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" 2>/dev/null | tail -2 | cut -c1-400; done
