#!/usr/bin/env bash
# Prepared for a session with nvidia-h200-x2 (not lent from the fourth to the nineteenth session), carrying .gpu4, in
# two calls on the same warm machine. Since the eleventh session the DiT uses FlashAttention-4 where it is installed:
# run `bash bench/gpu_fa4_install.sh a` (carry .fa4a) and `... b` (carry .fa4b) first, or the DiT's figures are SDPA's.
# Issue 13, the TP=2 AR decode and the whole generate on two GPUs:
#   bash bench/gpu_session_x2_next.sh 1   torch's symmetric-memory one-shot all-reduce (--decode-reduce symm, built in
#       the fourth session, never run on two GPUs) checked and timed against NCCL (check_symm_reduce.py); the 4B's
#       int8 batch-1 decode at TP=2 with NCCL (+int8, +int8-cuda) and with it (+symm, +symm-pdl; their tokens must
#       equal +int8's); the random folders of the whole generate.
#   bash bench/gpu_session_x2_next.sh 2   the whole generate under torchrun --num-gpus 2 (TP=2 AR model, the DiT's
#       guidance split), the guide's 9-frame prompt, guardrails on, each run a fresh process: the exact defaults (last
#       measured in the fourth session, 34.3 s after init, before the later kernels) and the two opt-in flags, each
#       with NCCL and with --decode-reduce symm, after a discarded warm run.
# Prediction: symm ~3-5 us against NCCL ~10-15 us a reduce; the defaults ~29-31 s after init (AR ~14-15 s, DiT
# ~10.5 s), the opt-in flags ~24-26 s; symm -1 to -2 s of each.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/x2n; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
case ${1:-} in
  1)
    timeout 60 python3 -m torch.distributed.run --standalone --nproc-per-node 2 bench/check_symm_reduce.py \
      > "$L/symm.log" 2>&1
    timeout 240 python3 -m torch.distributed.run --standalone --nproc-per-node 2 bench/bench_generate.py --tp 2 \
      --batch 1 --configs +int8,+int8-cuda,+symm,+symm-pdl --check 0 > "$L/tp2.log" 2>&1
    e2e_setup
    cp $L/*.log "$OUT"/ 2>/dev/null
    for f in symm tp2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -12; done ;;
  2)
    e2e_setup  # reuses the folders when present
    SYMM=(--generate-args "--decode-reduce symm")
    E2E_TIMEOUT=110 e2e warm 120 --configs dd --nproc 2 --guardrails
    E2E_TIMEOUT=100 e2e d1 480 --configs dd --nproc 2 --guardrails
    E2E_TIMEOUT=100 e2e ds1 480 --configs dd --nproc 2 --guardrails "${SYMM[@]}"
    E2E_TIMEOUT=100 e2e i1 480 --configs dd-int8-fp8 --nproc 2 --guardrails
    E2E_TIMEOUT=100 e2e is1 480 --configs dd-int8-fp8 --nproc 2 --guardrails "${SYMM[@]}"
    E2E_TIMEOUT=100 e2e d2 480 --configs dd --nproc 2 --guardrails
    E2E_TIMEOUT=100 e2e ds2 480 --configs dd --nproc 2 --guardrails "${SYMM[@]}"
    e2e_report warm d1 ds1 i1 is1 d2 ds2 ;;
  *) echo "usage: bash bench/gpu_session_x2_next.sh 1|2"; exit 2 ;;
esac
