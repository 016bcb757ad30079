#!/usr/bin/env bash
# A record of the call: the epilogue path it measured (commit 7931cab: diffusion_decoder/epilogues.py,
# --diffusion-decoder-epilogues, the e2e config dd-spec63-noepi) was removed after it (no gain in the whole DiT).
# Twenty-seventh session, call a61 (one H200, after `bash bench/gpu_fa4_install.sh a` and `b`; carry .gpu4). Issue 13:
# the DiT's GELU and gated residuals in QuACK GEMM epilogues (diffusion_decoder/epilogues.py, default "auto").
# bench_dit_epilogues.py (a60) measured a block's fused products at 40,960 rows: MLP up + GELU 8.85 -> 7.60 ms, MLP
# down + gated residual 7.29 -> 7.07, attention out + gated residual 2.25 -> 2.13 (x2: self and cross).
# Predicted: -1.7 ms a block, -48 ms a guided step, DiT -0.7 s; the whole exact generate ~29.8 s after init.
#   bash bench/gpu_session_a61.sh     # the GPU tier's epilogue test, then the whole generate: warm, two runs with
#                                     # the epilogues, one without (dd-spec63-noepi), same machine
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a61; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/gpu_tier_run.py dd_gemm_epilogues 2>&1 | grep -E "MEASURED|^\| test|^\| test_|FAIL|Error" | head -8
e2e_setup
E2E_TIMEOUT=100 e2e warm 380 --configs dd-spec63 --guardrails
E2E_TIMEOUT=95 e2e g63 400 --configs dd-spec63 --guardrails
E2E_TIMEOUT=95 e2e noepi 440 --configs dd-spec63-noepi --guardrails
E2E_TIMEOUT=95 e2e h63 480 --configs dd-spec63 --guardrails
e2e_report warm g63 noepi h63
exit 0
