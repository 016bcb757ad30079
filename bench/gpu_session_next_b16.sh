#!/usr/bin/env bash
# Thirteenth session (2026-12-02), one H200 call (~6 min), carrying .gpu4, after bench/gpu_fa4_install.sh a and b.
# 1. The exit of a generate that fails while a background load still runs. Call 3 of this session: SigLIP's weights could not be read (the loader did not know
# transformers 5's key layout), generate printed its one-line error, then the process aborted (exit -6, "terminate
# called without an active exception") under the diffusion decoder's load thread. cosmos-ar's console script
# (cli.entry) now leaves through os._exit in that case: expect exit 1 and the same one-line error, no abort.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b16; rm -rf $L
source bench/gpu_site.sh .gpu4
e2e_setup
S=/tmp/e2e/checkpoints/Cosmos-Predict1-4B/guardrail/video_content_safety_filter/siglip-so400m-patch14-384
mv $S/model.safetensors $S/model.safetensors.away
for run in 1 2; do
  python3 -m nemo_cosmos_ar.cli generate --checkpoint-dir /tmp/e2e/checkpoints --input /tmp/e2e/input.mp4 \
    --output /tmp/b16.mp4 --overwrite --no-progress --decode-weights int8 --diffusion-decoder-gemm fp8 \
    > $L/err$run.log 2>&1
  echo "run $run: exit $? ($(tail -c 300 $L/err$run.log | tr '\n' ' '))"
  ls /tmp/b16.mp4 2>/dev/null && echo "run $run: an output was written"
done
mv $S/model.safetensors.away $S/model.safetensors
cp $L/*.log "$OUT"/
# 2. CUDA_DEVICE_MAX_CONNECTIONS. gpu_site.sh sets it to 1 for every run (Megatron's training setting, kept from the
# first sessions); `cosmos-ar generate` in a plain shell runs with CUDA's default (8 hardware queues). generate
# overlaps work on side streams (the DiT's first unconditional pass beside the AR decode, loads beside loads), which
# a single queue orders by submission. a = unset (what a user gets), b = 1 (every figure so far); guardrails on,
# int8 + FP8 + FA4.
run() { E2E_TIMEOUT=90 e2e "$@" --configs dd-int8-fp8 --guardrails; }
run_unset() { (unset CUDA_DEVICE_MAX_CONNECTIONS; run "$@"); }  # a subshell: only this run loses it
run_unset warm 400
for i in 1 2; do run_unset a$i 300; run b$i 300; done
e2e_report warm a1 b1 a2 b2
