#!/usr/bin/env bash
# Tenth session (2026-12-02), one H200, carrying .gpu4; the session's last ~6 device minutes. Issue 13: the diffusion
# decoder's background load started beside the AR model load ("early", the code now: it then overlaps less of the AR
# decode, which it slowed to 583-587 tokens/s in call a11) against after the prompt ("late", as in call a11). int8 +
# FP8, the guide's 9-frame prompt, fresh processes: warm (discarded), early, late, early, late while time is left.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c12; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
P=nemo_cosmos_ar/inference/pipeline.py
E='    if rank == 0 and pending is not None:  # the diffusion decoder'
D='    if False:  # the diffusion decoder'
run() { [ $SECONDS -lt 270 ] || return; timeout 75 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e \
  --configs dd-int8-fp8 --input video --timeout 70 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
run warm; run early1; swap $P "$E" "$D"; run late1; swap $P "$D" "$E"; run early2; swap $P "$E" "$D"; run late2
swap $P "$D" "$E"
for f in warm early1 late1 early2 late2; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" 2>/dev/null | tail -2 | cut -c1-400; done
