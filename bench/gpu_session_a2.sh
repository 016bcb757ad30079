#!/usr/bin/env bash
# Device call 1 of the 2026-12-01 session, nvidia-h200-x2, carrying .gpu4. Issue 13:
#   GPU 1: bench_dd_kernels.py (the DiT's attention backends, FP8 against bf16 GEMMs, compiled blocks, a profile);
#   GPU 0: the random folders, then the whole generate at TP=1 on a 9-frame video prompt (the guide's input);
#   then both GPUs: the whole generate under torchrun on the 9-frame prompt, bf16 and int8 AR weights.
# The code state: the DiT's SDPA prefers cuDNN; the decoder's background load starts with the AR decode loop.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a2; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
(CUDA_VISIBLE_DEVICES=1 taskset -c 16-31 timeout 280 python3 bench/bench_dd_kernels.py > "$L/kernels.log" 2>&1) &
CUDA_VISIBLE_DEVICES=0 taskset -c 0-15 timeout 270 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd --input video > "$L/e2e1.log" 2>&1
wait
timeout 230 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dd-int8 --input video --nproc 2 > "$L/e2e2.log" 2>&1
for f in kernels e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -40; done
cp $L/*.log "$OUT"/ 2>/dev/null
