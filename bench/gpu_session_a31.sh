#!/usr/bin/env bash
# Twenty-fourth session, call a31 (one H200 carrying .gpu4, ~6 min): the decode alone at windows whose L + 1 rows fill
# the verify attention's 64-row blocks exactly (4 query heads a KV group: M = L + 1 = 16 / 32 / 64 is 64 / 128 / 256
# rows) against L = 16 / 32 / 64 (68 / 132 / 260 rows: one more block, nearly empty), same machine.
# Prediction (a30: 3.08 / 3.34 / 3.88 ms a step at L = 16 / 32 / 64): L = 15 ~2.85 ms, L = 31 ~3.15, L = 63 ~3.65, at
# about the same tokens a step.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 500 python3 bench/bench_speculative.py --runs 15:triton,16:triton,31:triton,32:triton,63:triton,64:triton \
  > "$OUT/speculative.log" 2>&1
echo "speculative rc=$?"
grep -E "^\||^one-token|^AR stage|^L=" "$OUT/speculative.log" | cut -c1-300
