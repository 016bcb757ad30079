#!/usr/bin/env bash
# A record of the call: verify_kernel's pdl option it measured (commit 9ba4be8) was removed after it (no gain).
# Twenty-sixth session, call a51 (one H200 carrying .gpu4, ~4 min, no FA4 needed). Issue 13: the verify attention's
# two kernels by programmatic dependent launch (verify_kernel pdl=True; the combine may launch while the split kernel
# drains, as the one-token decode's kernels do), alone (M = 16 / 32 / 64 at 5,120 / 12,700 slots, 16 calls a graph)
# and in the step (bench_speculative at L = 63 / 31 / 15, without then with, same machine).
# Prediction: -1 to -3 us a layer (the combine's launch gap), a step -0.02 to -0.05 ms.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
for p in 0 1; do
  VERIFY_PDL=$p timeout 100 python3 bench/bench_verify_parts.py --parts attention --choices "64,4,2,64,3" 2>&1 \
    | grep -E "^programmatic|^\| [0-9]"
done
spec() { timeout 200 python3 bench/bench_speculative.py --runs 63:triton,31:triton,15:triton 2>&1 | grep -E "^L=" | cut -c1-220; }
echo "pdl False"; spec
swap nemo_cosmos_ar/inference/verify_kernel.py '"num_stages": 3, "pdl": False}' '"num_stages": 3, "pdl": True}'
echo "pdl True"; spec
exit 0
