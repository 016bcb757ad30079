#!/usr/bin/env bash
# Device call 2 of the 2026-12-01 (fourth) session, one H200, carrying .gpu4: cuDNN FP8 attention's error against
# fp32 with static q/k scales, P's scale fixed (448) or from the reported amax, random and peakier logits, batch 1.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
timeout 200 python3 bench/bench_fp8_attention.py --batches 1 --sharpness 1,4,12 2>&1 | grep -vE "Warning|warn\(" | tee "$OUT/fp8attn2.log"
