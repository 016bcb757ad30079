#!/usr/bin/env bash
# Fourteenth session (2026-12-02), one H200, carrying .gpu4 (~2 min): the fused top-p sampler (issue 13).
# bench_sampler.py: the batch-1 draw's microseconds in a CUDA graph and eagerly, torch ops against sort + Triton
# kernel, and their agreement over 1,000 draws per spread; then tests/test_sample_kernel.py on the GPU (the kernel
# against the ops with a stable sort, the CUDA dispatch).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 300 python3 bench/bench_sampler.py --draws 1000 2>&1 | grep -vE "Warning|warn\(" | tee "$OUT/sampler.log"
timeout 200 python3 -m pytest tests/test_sample_kernel.py -q -p no:cacheprovider 2>&1 | tail -8 | tee "$OUT/sampler_tests.log"
