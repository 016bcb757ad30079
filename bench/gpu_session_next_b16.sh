#!/usr/bin/env bash
# Thirteenth session (2026-12-02), one H200 call (~2 min), carrying .gpu4: the exit of a generate that fails while a
# background load still runs. Call 3 of this session: SigLIP's weights could not be read (the loader did not know
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
