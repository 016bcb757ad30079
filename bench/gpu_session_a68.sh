#!/usr/bin/env bash
# Twenty-eighth session (one H200; results in BENCHMARKS.md). a62-a63: bench/gpu_fa4_install.sh a / b; a64-a65:
# bench/gpu_session_next_fa4tiles.sh and a second sweep around 192-row tiles: 192 x 128, P @ V from shared memory,
# intra-warpgroup overlap, 3.6-5.1% faster than FA4's default at the DiT's self-attention, bit-equal output.
# a66-a67: the FA4 install on a fresh lease; a68 (this script, same warm machine; carry .gpu4): the GPU tier's FA4 test (the
# tuned tiles taken, equal to the default's output), then the whole exact generate, runs alternating between the
# tuned tiles (committed) and FA4's default (COSMOS_AR_FA4_DEFAULT_TILES=1), each a fresh process.
# Predicted: attention ~8.5 s of the DiT's ~20.3 s, 4% of it: DiT -0.3 to -0.4 s, the whole ~30.1-30.3 s after init.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a68; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
[ -f /tmp/fa4site/.b_ok ] || { echo "FA4 is not installed on this machine: run bench/gpu_fa4_install.sh a, then b"; exit 3; }
timeout 120 python3 bench/gpu_tier_run.py fa4 2>&1 | grep -vE "Warning|warn\(" | tail -6
e2e_setup
E2E_TIMEOUT=95 e2e warm 420 --configs dd-spec63 --guardrails
for n in 1 2; do
  COSMOS_AR_FA4_DEFAULT_TILES=1 E2E_TIMEOUT=95 e2e default$n 470 --configs dd-spec63 --guardrails
  E2E_TIMEOUT=95 e2e tuned$n 470 --configs dd-spec63 --guardrails
done
e2e_report warm default1 tuned1 default2 tuned2
exit 0
