#!/usr/bin/env bash
# Prepared in the eleventh session (2026-12-02) for a later one-H200 call (~5 min), carrying .gpu4, after
# `bash bench/gpu_fa4_install.sh a` and `... b` on the same warm machine. Issue 13, counted as NVIDIA counts its ~62 s:
# the whole generate with the guardrails on (random weights that pass every video and find no face; SigLIP so400m
# + the safety classifier + RetinaFace-R50), int8 + FP8 + FA4, the guide's 9-frame prompt, each run a fresh process.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b14; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
run() { [ $SECONDS -lt 420 ] || return; timeout 110 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e \
  --configs dd-int8-fp8 --input video --guardrails --timeout 100 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
names=(warm g1 g2 g3 g4)
for n in "${names[@]}"; do run "$n"; done
for f in "${names[@]}"; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" 2>/dev/null | tail -2 | cut -c1-360; done
