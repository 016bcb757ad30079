#!/usr/bin/env bash
# Nineteenth session, nvidia-h200-x2 carrying .gpu4, after `bash bench/gpu_fa4_install.sh a` (carry .fa4a) and `... b`
# (carry .fa4b) on the same warm machine. Issue 13: the exact defaults on two GPUs with today's kernels (last measured
# in the fourth session's call b2, 34.3 s after init, before the FP8/int8/attention/sampler work), and
# `--decode-reduce symm` (built in the fourth session, never run on two GPUs).
#   1. check_symm_reduce.py: the one-shot all-reduce's sums against a local sum, eager and in a CUDA graph, and us per
#      all-reduce against NCCL;
#   2. the whole generate under torchrun --nproc-per-node 2 --num-gpus 2 (TP=2 AR model, the DiT's guidance split),
#      the guide's 9-frame prompt, guardrails on, each run a fresh process: a discarded warm run, then the defaults
#      (exact bf16, NCCL) and the defaults with --decode-reduce symm in turn while the call's time lasts.
# Prediction: symm ~3-5 us against NCCL ~10-15 us a reduce; defaults ~29-31 s after init (AR ~14-15 s at ~520
# tokens/s, DiT ~10.5 s), symm -1 to -2 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b22; rm -rf $L; mkdir -p $L "$OUT"
source bench/gpu_site.sh .gpu4
timeout 60 python3 -m torch.distributed.run --standalone --nproc-per-node 2 bench/check_symm_reduce.py > "$L/symm.log" 2>&1
cp $L/symm.log "$OUT"/
e2e_setup
names=(warm)
E2E_TIMEOUT=110 e2e warm 330 --configs dd --nproc 2 --guardrails
for i in 1 2 3; do
  E2E_TIMEOUT=100 e2e d$i 470 --configs dd --nproc 2 --guardrails && names+=(d$i)
  E2E_TIMEOUT=100 e2e s$i 470 --configs dd --nproc 2 --guardrails --generate-args "--decode-reduce symm" && names+=(s$i)
done
grep -vE "Warning|warn\(|pynvml|^\s*$" "$L/symm.log" | tail -8
e2e_report "${names[@]}"
