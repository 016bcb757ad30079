#!/usr/bin/env bash
# Device call a8 (2026-12-01, seventh session), one H200, carrying .gpu4. Issue 13: does the AR capture's
# capture_error_mode="thread_local" make the prompt-first order (bench/prompt_first.patch = commit 3136976) safe?
# Two runs in the current order (the first pays a fresh machine's compiles), then the patch and three runs.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a8; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader > $L/host.log
timeout 120 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
run() { timeout 110 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --timeout 100 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
run old1; run old2
patch -p1 < bench/prompt_first.patch > $L/patch.log 2>&1
run first1; run first2; run first3
for f in old1 old2 first1 first2 first3; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml|^# (setup|cosmos)|^\| (config|---)" "$L/$f.log" | tail -4; done
