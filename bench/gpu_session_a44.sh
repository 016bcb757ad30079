#!/usr/bin/env bash
# Twenty-sixth session, calls a44-a46 on the warm machine right after a43 (one H200), run as inline commands; this
# script holds them in order. Each "run" call must follow the last within 30 s.
#   a44 (carry .gpu4): the step on the code as committed after a43 (the separate combine, nucleus TILE 4,096), the
#       file swapped on the device: bench_speculative at L = 63 / 31 / 15.
#   a45: bash bench/gpu_fa4_install.sh a (carry .fa4a), then b (carry .fa4b).
#   a46 (carry .gpu4): the whole generate, exact distribution (--speculative-window 63, FA4, guardrails): warm, two runs.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a46; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
case ${1:-a46} in
  a44)
    timeout 400 python3 bench/bench_speculative.py --runs 63:triton,31:triton,15:triton 2>&1 \
      | grep -E "^\||^one-token|^L=" | head -8 | cut -c1-300 ;;
  a46)
    e2e_setup
    for n in warm g63 h63; do E2E_TIMEOUT=95 e2e $n 420 --configs dd-spec63 --guardrails; done
    e2e_report warm g63 h63 ;;
esac
exit 0
