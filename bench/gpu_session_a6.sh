#!/usr/bin/env bash
# Device call 1 of the 2026-12-01 (fifth) session, one H200, carrying .gpu4. Issue 13: two lossless levers measured in
# isolation: bf16 attention alternatives for the DiT (bench_sdpa_bf16.py: torch's cuDNN and flash backends, the cuDNN
# frontend's own bf16 graph) and the int8 decode products on the int8 tensor cores (bench_gemv_mma.py, after the int8
# kernel tests compiled on the GPU).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a6; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:$PWD/bench:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
F="Warning|warn\(|pynvml"
timeout 120 python3 bench/bench_sdpa_bf16.py 2>&1 | grep -vE "$F" | tee "$L/sdpa.log"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_int8.py 2>&1 | tail -3 | tee "$L/pytest.log"
timeout 280 python3 bench/bench_gemv_mma.py 2>&1 | grep -vE "$F" | tee "$L/mma.log"
cp $L/*.log "$OUT"/
