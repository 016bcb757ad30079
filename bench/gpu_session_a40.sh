#!/usr/bin/env bash
# Twenty-fifth session, calls a40 and a41 (one H200 carrying .gpu4, right after a39 on the same warm machine, FA4 and
# /tmp/e2e from it), run as inline commands; this script holds them. a39's round_kernel change (the nucleus search's
# 16 thresholds in one 2-D reduction) made the search 4x slower (4 rounds 110 -> 439 us a step) and was reverted;
# this measures the K/V-write fold alone:
#   a40: the decode alone at L = 63 / 31 / 15 (a36 on cuBLAS with index_copy_: 3.44 / 3.07 / 2.92 ms a step);
#   a41: the whole generate, exact distribution (--speculative-window 63, FA4, guardrails): warm, then two runs.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a40; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
timeout 240 python3 bench/bench_speculative.py --runs 63:triton,31:triton,15:triton 2>&1 | grep -E "^\||^one-token|^L=" \
  | head -8 | cut -c1-300
e2e_setup
for n in warm g63 h63; do E2E_TIMEOUT=95 e2e $n 400 --configs dd-spec63 --guardrails; done
e2e_report warm g63 h63
exit 0
