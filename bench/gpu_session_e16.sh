#!/usr/bin/env bash
# Fifteenth session (2026-12-02), one H200 call carrying .gpu4 (~8 min): the int8 decode products' L2 prefetch
# (gemv_cuda.L2_PREFETCH: each block asks L2 for the rest of its first row group before griddepcontrol.wait, while
# the latency-bound kernel before it finishes). First the GPU tier's int8 kernel test with the prefetch on (abort if
# it fails), then the whole generate A/B (int8 + FP8, SDPA for the DiT: no FA4 this call, no guardrails): "a" = off
# (as committed), "b" = on; a discarded warm run, then pairs while the call lasts.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 150 python3 -c "
import sys; sys.path.insert(0, 'tests')
from nemo_cosmos_ar.inference import gemv_cuda
gemv_cuda.L2_PREFETCH = True
import test_gpu
test_gpu.test_int8_cuda_kernel_matches_triton_and_reference()
print('int8 CUDA kernel with the L2 prefetch: pass')
" 2>&1 | grep -vE "Warning|warn\(" | tail -3 | tee "$OUT/tier.log"
grep -q ": pass" "$OUT/tier.log" || exit 5
bash bench/gpu_ab_e2e.sh nemo_cosmos_ar/inference/gemv_cuda.py 'L2_PREFETCH = False' 'L2_PREFETCH = True' 3 360
