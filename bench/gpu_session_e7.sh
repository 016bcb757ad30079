#!/usr/bin/env bash
# Device call 5 of the 2026-12-01 (sixth) session, one H200, carrying .gpu4. Issue 13: the CUDA int8 kernel's PDL
# trigger (after staging x, or after its rows, or no PDL) and x read from global memory instead of shared: the
# products alone and as a layer chain (bench_gemv_cuda --quick), then the decode with each, in one process.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/e7; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 100 python3 bench/bench_gemv_cuda.py --quick > "$L/gemv.log" 2>&1; cp $L/*.log "$OUT"/
timeout 300 python3 bench/bench_generate.py --batch 1 --check 0 \
  --configs +int8-cuda,+int8-cuda-late,+int8-cuda-nopdl,+int8-cuda,+int8-cuda-late,+int8-cuda-nopdl > "$L/gen.log" 2>&1
cp $L/*.log "$OUT"/
grep -vE "Warning|warn\(|pynvml" $L/gemv.log | tail -18
grep -vE "Warning|warn\(|pynvml" $L/gen.log | tail -9
