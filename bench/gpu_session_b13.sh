#!/usr/bin/env bash
# Eleventh session (2026-12-02), one H200 after `bash bench/gpu_fa4_install.sh a` and `... b` (carry .gpu4): the
# committed code as a user runs it, FlashAttention-4 installed: generate's defaults ("dd": bf16 everywhere) and the
# fastest measured flags ("dd-int8-fp8"), the guide's 9-frame prompt, each run a fresh process, while the call lasts.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b13; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
run() { [ $SECONDS -lt 400 ] || return; timeout 90 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e \
  --configs "$2" --input video --timeout 85 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
names=(warm d1 f1 d2 f2 f3 f4)
run warm dd-int8-fp8; run d1 dd; run f1 dd-int8-fp8; run d2 dd; run f2 dd-int8-fp8; run f3 dd-int8-fp8
run f4 dd-int8-fp8
for f in "${names[@]}"; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" 2>/dev/null | tail -2 | cut -c1-330; done
