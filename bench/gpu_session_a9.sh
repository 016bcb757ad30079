#!/usr/bin/env bash
# Device call a9 (2026-12-01, eighth session), one H200, carrying .gpu4. Issue 13: what one video costs in a
# many-video job (batch mode, `--batches`): four lines of the guide's 9-frame prompt decoded together at batch 4
# (bf16 AR; the FP8 DiT), after a discarded batch of 4 on the fresh machine.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a9; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv > "$L/gpu.txt" 2>&1
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
timeout 400 python3 bench/bench_generate_e2e.py --timeout 190 --work-dir /tmp/e2e --configs dd-fp8 --input video \
  --batches 4:4 > "$L/b44.log" 2>&1
cp $L/*.log $L/gpu.txt "$OUT"/ 2>/dev/null
for f in setup b44; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -6; done
