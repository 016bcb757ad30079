#!/usr/bin/env bash
# Device call 2 of the 2026-12-01 (fifth) session, one H200, carrying .gpu4. Issue 13: the int8 decode products with
# integer dot products (gemv dp4a=True): the int8 kernel tests compiled on the GPU, then bench_gemv_dp4a.py.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b6; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:$PWD/bench:${PYTHONPATH:-}
unset PYTHONDONTWRITEBYTECODE
F="Warning|warn\(|pynvml"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_int8.py 2>&1 | tail -15 | tee "$L/pytest.log"
timeout 300 python3 bench/bench_gemv_dp4a.py 2>&1 | grep -vE "$F" | tee "$L/dp4a.log"
cp $L/*.log "$OUT"/
