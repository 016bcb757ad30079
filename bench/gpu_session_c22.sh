#!/usr/bin/env bash
# Nineteenth session, the call after gpu_session_b22.sh on the same warm nvidia-h200-x2 (carry .gpu4; /tmp/e2e and
# FlashAttention-4 still there). Issue 13: the two opt-in flags on two GPUs with NCCL and with --decode-reduce symm,
# then more defaults runs, each a fresh torchrun, guardrails on, the guide's 9-frame prompt.
# Prediction: int8 + FP8 ~24-26 s after init (fourth session: 28.5 s), symm -1 to -2 s of it.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c22; rm -rf $L; mkdir -p $L "$OUT"
source bench/gpu_site.sh .gpu4
e2e_setup  # reuses the folders when present
names=()
for i in 1 2; do
  E2E_TIMEOUT=100 e2e i$i 480 --configs dd-int8-fp8 --nproc 2 --guardrails && names+=(i$i)
  E2E_TIMEOUT=100 e2e is$i 480 --configs dd-int8-fp8 --nproc 2 --guardrails --generate-args "--decode-reduce symm" && names+=(is$i)
  E2E_TIMEOUT=100 e2e d$i 480 --configs dd --nproc 2 --guardrails --generate-args "--decode-reduce symm" && names+=(d$i)
done
e2e_report "${names[@]}"
