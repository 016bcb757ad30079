#!/usr/bin/env bash
# Twenty-ninth session, calls a82 (bench) and a83 (e2e) on one H200 lease. Issue 13: the DiT's GELU and gated
# residuals done by the cuBLAS products before them (diffusion_decoder/epilogues.py, --diffusion-decoder-epilogues
# auto, the default). The confirm run before it (a80, bench/gpu_session_next_confirm.sh) found the DiT at the GPU's
# 700 W limit (SM clock median 1,575 MHz, the power cap the throttle reason in 68% of busy samples) and the whole
# exact generate at 30.2-30.3 s after init: work removed is what pays there. Predicted: the GELU pass (1.09 ms) and
# three gated passes (~0.4 ms) a block less, the products' beta = 1 and weight scaling ~0.1 ms more: about -1.3 ms a
# block, -0.5 s of the DiT.
#   bash bench/gpu_fa4_install.sh a                    # carry .fa4a
#   bash bench/gpu_session_a82.sh bench                # carry .fa4b: FA4 part b, the products and a 2-block
#                                                      # forward (bench_dit_blas_epilogues.py), the GPU tier test
#   bash bench/gpu_session_a82.sh e2e                  # carry .gpu4: the whole exact generate, epilogues on / off
#                                                      # alternating (warm, on, off, on, off), SM clock and power
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a82; mkdir -p "$OUT" "$L"
case ${1:-} in
  bench)
    if [ ! -f /tmp/fa4site/.b_ok ] && [ -f /tmp/fa4site/.a_ok ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/fa4b .fa4b/*.whl \
        && cp -r /tmp/fa4b/. /tmp/fa4site/ && touch /tmp/fa4site/.b_ok
    fi
    export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
    timeout 240 python3 bench/bench_dit_blas_epilogues.py --rounds 5 2>&1 | tee "$OUT/bench.log" | grep -v "^$"
    timeout 150 python3 bench/gpu_tier_run.py dd_gemm_epilogues 2>&1 | grep -E "MEASURED|^\| test|FAIL|Error|assert" | head -8
    ;;
  e2e)
    source bench/gpu_site.sh .gpu4
    [ -f /tmp/fa4site/.b_ok ] || { echo "FA4 is not installed on this machine"; exit 3; }
    smi_start
    e2e_setup
    E2E_TIMEOUT=100 e2e warm 110 --configs dd-spec63 --guardrails
    E2E_TIMEOUT=95 e2e off1 200 --configs dd-spec63-noepi --guardrails
    E2E_TIMEOUT=95 e2e on1 290 --configs dd-spec63 --guardrails
    E2E_TIMEOUT=95 e2e off2 380 --configs dd-spec63-noepi --guardrails
    E2E_TIMEOUT=95 e2e on2 470 --configs dd-spec63 --guardrails
    e2e_report warm off1 on1 off2 on2
    smi_report
    ;;
  *) echo "usage: $0 bench|e2e"; exit 2 ;;
esac
exit 0
