#!/usr/bin/env bash
# Nineteenth session, one H200 carrying .gpu4, after gpu_session_a22.sh (FlashAttention-4 not installed: the DiT's
# attention is SDPA here, the same in both arms). Issue 13: the whole generate with generate's exact defaults ("t",
# the Triton bf16 products) against --decode-bf16-kernel fused ("f"), the guide's 9-frame prompt, guardrails on,
# each run a fresh process: a discarded warm run of each, then t / f pairs while the call's time lasts.
# Prediction: the AR decode -0.5 to -1.5 s in "f"; the rest equal.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/d22; rm -rf $L; mkdir -p $L "$OUT"
source bench/gpu_site.sh .gpu4
e2e_setup
names=()
E2E_TIMEOUT=100 e2e warm_t 300 --configs dd --guardrails
E2E_TIMEOUT=100 e2e warm_f 300 --configs dd --guardrails --generate-args "--decode-bf16-kernel fused"
for i in 1 2 3; do
  E2E_TIMEOUT=90 e2e t$i 470 --configs dd --guardrails && names+=(t$i)
  E2E_TIMEOUT=90 e2e f$i 470 --configs dd --guardrails --generate-args "--decode-bf16-kernel fused" && names+=(f$i)
done
e2e_report warm_t warm_f "${names[@]}"
