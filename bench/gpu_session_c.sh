#!/usr/bin/env bash
# TP=2 -> TP=1 checkpoint reshard at 4B scale (issue 7 at the sizes lent): cosmos_ar_4b_tealrobot_tp4's model and
# data at TP=2 on 2 GPUs saves a distributed checkpoint at step 6 and logs steps 7-8; TP=1 on 1 GPU resumes it and
# logs steps 7-8 again.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
rm -rf /tmp/tp /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
  .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
rm -rf /tmp/tp
timeout 270 python3 -m torch.distributed.run --nproc-per-node=2 bench/bench_recipe.py --factory cosmos_ar_4b_tealrobot_tp4 \
  --tp 2 --steps 8 --save-every 6 --out /tmp/tp 2>&1 | tee "$OUT/tp2.log" | grep -E "RESULT|^step|Error|error:" | tail -12
ls /tmp/tp/posttraining/autoregressive_base/cosmos_ar_4b_tealrobot_tp4/checkpoints; df -h /tmp | tail -1
CUDA_VISIBLE_DEVICES=0 timeout 240 python3 bench/bench_recipe.py --factory cosmos_ar_4b_tealrobot_tp4 --tp 1 --steps 8 \
  --out /tmp/tp 2>&1 | tee "$OUT/tp1_resume.log" | grep -E "RESULT|^step|Restored|Error|error:" | tail -8
