#!/usr/bin/env bash
# One device-tool call on an H200 machine: model, tokenizer and single-GPU recipe benchmarks.
# Needs the NeMo wheel bundle (.nemo_whl, see README "GPU benchmarks") carried along. Logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
  .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
CUDA_VISIBLE_DEVICES=0 timeout 200 python3 bench/bench_model.py 2>&1 | tee "$OUT/bench_model.log" | grep -E "^\||spec="
CUDA_VISIBLE_DEVICES=0 timeout 200 python3 bench/bench_tokenizer.py 2>&1 | tee "$OUT/bench_tokenizer.log" | tail -15
CUDA_VISIBLE_DEVICES=0 timeout 240 python3 bench/bench_recipe.py --factory cosmos_ar_4b_tealrobotsmall_tp1 --steps 10 \
  2>&1 | tee "$OUT/bench_recipe_tp1.log" | grep -E "RESULT|^step|Error|error:" | tail -15
