#!/usr/bin/env bash
# Device call 2 of the 2026-12-01 (sixth) session, one H200, carrying .gpu4. Issue 13: the int8 decode products as a
# hand-written CUDA kernel (inference/gemv_cuda.py, NVRTC) against the Triton kernel, per shape and as a layer chain.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b7; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
python3 -c "import torch, torch.cuda._utils as u; print(torch.__version__, hasattr(torch.cuda, '_compile_kernel'), hasattr(u, '_check_cuda'))"
timeout 400 python3 bench/bench_gemv_cuda.py > "$L/gemv_cuda.log" 2>&1; cp $L/*.log "$OUT"/
grep -vE "Warning|warn\(|pynvml" $L/gemv_cuda.log | tail -40
