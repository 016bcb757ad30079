#!/usr/bin/env bash
# Prepared in the tenth session (2026-12-02) for a later one-H200 call (~8 min), carrying .gpu4. Issue 13: call c12
# again with three runs of each order, to settle whether starting the diffusion decoder's background load beside the
# AR model load ("early", the code now) beats starting it after the prompt ("late"); call c12 could not tell (after
# init 30.6 / 30.9 against 31.2 / 30.1 s). int8 + FP8, the guide's 9-frame prompt, fresh processes: warm (discarded),
# then early / late three times, while time is left.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/d12; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
P=nemo_cosmos_ar/inference/pipeline.py
E='    if rank == 0 and pending is not None:  # the diffusion decoder'
D='    if False:  # the diffusion decoder'
run() { [ $SECONDS -lt 520 ] || return; timeout 75 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e \
  --configs dd-int8-fp8 --input video --timeout 70 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
run warm
for i in 1 2 3; do run early$i; swap $P "$E" "$D"; run late$i; swap $P "$D" "$E"; done
for f in warm early1 late1 early2 late2 early3 late3; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" 2>/dev/null | tail -2 | cut -c1-400; done
