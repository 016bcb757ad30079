#!/usr/bin/env bash
# Device call 2 of the 2026-12-01 session, nvidia-h200-x2, carrying .gpu4. Issue 13, the DiT's Triton kernels
# (diffusion_decoder/fused.py) and the load start back in the decoder's constructor:
#   GPU 1: bench_dd_kernels.py (forward with eager ops against the Triton kernels, profile), then the kernel tests
#          on the GPU (bf16 within one unit in the last place);
#   GPU 0: the random folders, then the whole generate at TP=1 on the 9-frame video prompt;
#   then both GPUs: the whole generate under torchrun on the video prompt (bf16 and int8 AR weights);
#   then GPU 0: one more TP=1 run under cProfile (what "other" is).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b2; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
(CUDA_VISIBLE_DEVICES=1 taskset -c 16-31 timeout 200 python3 bench/bench_dd_kernels.py > "$L/kernels.log" 2>&1;
 CUDA_VISIBLE_DEVICES=1 taskset -c 16-31 timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fused.py > "$L/pytest.log" 2>&1) &
CUDA_VISIBLE_DEVICES=0 taskset -c 0-15 timeout 250 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd --input video > "$L/e2e1.log" 2>&1
wait
timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dd-int8 --input video --nproc 2 > "$L/e2e2.log" 2>&1
CUDA_VISIBLE_DEVICES=0 timeout 110 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd --input video --cprofile > "$L/prof.log" 2>&1
for f in kernels pytest e2e1 e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -32; done
echo "=== prof"; grep -E "^\||^#" "$L/prof.log" | head -8
cp $L/*.log "$OUT"/ 2>/dev/null
