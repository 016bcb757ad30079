#!/usr/bin/env bash
# Issue 7: cosmos_ar_4b_tealrobot_tp4 (4B, 33x640x848 -> 10,600 tokens, mock clips) on one 4-GPU H200 machine.
#  1. TP=MAX_TP on MAX_TP GPUs from random weights: 8 steps, one distributed checkpoint after step 6 (step=5).
#  2. TP=1 on 1 GPU, then TP=2 on 2 GPUs, each resume that checkpoint (weights, optimizer, data position) and run
#     steps 7-8: their losses must equal the first run's steps 7-8 within bf16 tolerance.
# Each run prints a RESULT json line (per-step losses, ms/step, tokens/s/GPU, model TFLOP/s/GPU, peak GiB); at the
# end bench/tp_table.py prints them as markdown tables (speed per run; losses of steps 7-8 side by side). Speed of a
# resumed run covers its first two steps after loading only: for TP=1/TP=2 speed, run bench_recipe.py without
# --resume-from.
# Usage (device tool, the NeMo wheel bundle carried): bash bench/bench_tp_scaling.sh [MAX_TP]
set -uo pipefail
MAX_TP=${1:-4}
rm -rf /tmp/tp /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
  .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
F=cosmos_ar_4b_tealrobot_tp4
CK=/tmp/tp/posttraining/autoregressive_base/$F/checkpoints/step=5
LOG=${OUT:-/tmp}/tp_results.log
: > "$LOG"
timeout 240 python3 -m torch.distributed.run --nproc-per-node=$MAX_TP bench/bench_recipe.py --factory $F --tp $MAX_TP \
  --steps 8 --save-every 6 --out /tmp/tp 2>&1 | grep -E "RESULT|Error|error:" | tail -5 | tee -a "$LOG"
ls "$CK" || exit 1
for TP in 1 2; do
  [ "$TP" -ge "$MAX_TP" ] && continue
  CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((TP - 1))) timeout 200 python3 -m torch.distributed.run --nproc-per-node=$TP \
    bench/bench_recipe.py --factory $F --tp $TP --steps 8 --save-every 1000 --resume-from "$CK" --out /tmp/tp_$TP 2>&1 \
    | grep -E "RESULT|Restored all states|Error|error:" | tail -5 | tee -a "$LOG"
done
python3 bench/tp_table.py "$LOG"
