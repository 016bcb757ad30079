#!/usr/bin/env bash
# Device call 1 of the 2026-11-30 session, nvidia-h200-x2 (NeMo bundle carried): two single-GPU streams at once.
#   GPU 0: generation speed, change by change (issue 12): batch 1 over every configuration, then batch 4 and 8.
#   GPU 1: the 7B diffusion decoder (issue 13), the guardrails (issue 14, fp32 and bf16), then the GPU test tier (19).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
[ -f /tmp/site/.ok ] || { rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile \
  --target /tmp/site .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) && touch /tmp/site/.ok; } || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import megatron.core" 2>/dev/null
( export CUDA_VISIBLE_DEVICES=0
  timeout 250 python3 bench/bench_generate.py --batch 1 > "$OUT/gen_b1.log" 2>&1
  timeout 170 python3 bench/bench_generate.py --batch 4,8 --configs +sample-in-graph --check 0 \
    > "$OUT/gen_b48.log" 2>&1
  # TP=1 half of the TP=2 agreement check (gpu_session_f.sh compares against /tmp/tp1.pt on the warm machine)
  timeout 60 python3 bench/bench_generate.py --configs +sample-in-graph --batch 1 --greedy --check 0 \
    --max-new-tokens 1024 --save-tokens /tmp/tp1.pt > "$OUT/agree_tp1.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 270 python3 bench/bench_diffusion_decoder.py --work-dir /tmp/ddbench > "$OUT/dd.log" 2>&1
  timeout 60 python3 bench/bench_guardrails.py > "$OUT/guard.log" 2>&1
  timeout 50 python3 bench/bench_guardrails.py --dtype bf16 >> "$OUT/guard.log" 2>&1
  OUT=$OUT/tier timeout 100 bash bench/gpu_test_tier.sh > /dev/null 2>&1 ) &
wait
for f in gen_b1 gen_b48 agree_tp1 dd guard; do echo "=== $f"; grep -E "^\||^#|^[A-Za-z0-9].*(grid|GPU|H200)|rror" "$OUT/$f.log" | tail -24; done
echo "=== tier"; cat "$OUT/tier/gpu_tier.md" 2>/dev/null; tail -5 "$OUT/tier/gpu_tier.log" 2>/dev/null
