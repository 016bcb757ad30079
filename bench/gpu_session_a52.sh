#!/usr/bin/env bash
# Twenty-seventh session, calls a52-a59 (one H200 each; results in BENCHMARKS.md). a52: `step`; a53-a55: the FA4
# install and `e2e`; a56: bench_speculative --runs 127:triton,95:triton,63:triton; a57: bench/bench_blas_dit.py;
# a58-a59: the FA4 install and `e2e` on that machine. Issue 13: the verify forward's products captured on cuBLASLt from
# LT_ROWS = 32 rows (speculative.capture_library; bench_blas_rows.py measured one step's products at M = 32 / 64:
# 2.083 -> 2.010 and 2.180 -> 2.065 ms). Predicted: -0.07 ms a step at L = 31, -0.115 ms at L = 63 (3.27 -> ~3.15),
# AR decode -0.3 s, the whole exact generate ~29.6-30.3 s after init.
#   bash bench/gpu_session_a52.sh step   # carry .gpu4 (~5 min, no FA4): the GPU tier's speculative test (cuBLAS and
#                                        # cuBLASLt captures), then bench_speculative at L = 63 / 31 / 15 with
#                                        # LT_ROWS = 10**9 (cuBLAS everywhere, as before) and with the committed 32
#   bash bench/gpu_fa4_install.sh a; bash bench/gpu_fa4_install.sh b   # carry .fa4a, then .fa4b
#   bash bench/gpu_session_a52.sh e2e    # carry .gpu4: the whole generate, exact distribution, four fresh processes
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a52; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
spec() { timeout 200 python3 bench/bench_speculative.py --runs 63:triton,31:triton,15:triton 2>&1 | grep -E "^L=" | cut -c1-220; }
case ${1:-step} in
  step)
    timeout 120 python3 bench/gpu_tier_run.py speculative_decoding_on_cuda_graphs 2>&1 | tail -8
    swap nemo_cosmos_ar/inference/speculative.py "LT_ROWS = 32" "LT_ROWS = 10**9"
    echo "cuBLAS (LT_ROWS = 10**9)"; spec
    swap nemo_cosmos_ar/inference/speculative.py "LT_ROWS = 10**9" "LT_ROWS = 32"
    echo "cuBLASLt from 32 rows (committed)"; spec ;;
  e2e)
    e2e_setup
    for n in warm g63 h63 i63; do E2E_TIMEOUT=95 e2e $n 440 --configs dd-spec63 --guardrails; done
    e2e_report warm g63 h63 i63 ;;
esac
exit 0
