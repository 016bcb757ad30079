#!/usr/bin/env bash
# Device call 2 of the 2026-11-30 session, nvidia-h200-x2, warm after gpu_session_e.sh (bundle in /tmp/site).
#   Issue 12: TP=2 generation of the 4B and the 12B (random weights, real shapes), TP=2 vs TP=1 greedy agreement.
#   Issue 16: the LoRA runs, two at a time.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
[ -f /tmp/site/.ok ] || { rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile \
  --target /tmp/site .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) && touch /tmp/site/.ok; } || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
TR="python3 -m torch.distributed.run --nproc-per-node 2"
G="--configs +sample-in-graph --batch 1 --greedy --check 0 --max-new-tokens 1024"
timeout 80 $TR bench/bench_generate.py --tp 2 $G --compare /tmp/tp1.pt > "$OUT/agree.log" 2>&1
timeout 120 $TR bench/bench_generate.py --tp 2 --model 4b --configs mcore,+bucket,+sample-in-graph --batch 1 \
  --check 0 > "$OUT/gen_tp2_4b.log" 2>&1
timeout 100 $TR bench/bench_generate.py --tp 2 --model 12b --configs +sample-in-graph --batch 1 --check 0 \
  --max-new-tokens 3072 > "$OUT/gen_tp2_12b.log" 2>&1
echo "TP1 half: gpu_session_e.sh wrote /tmp/tp1.pt"
GPUS=0,1 timeout 230 bash bench/gpu_lora.sh "--only 4b_12800,12b_10600,4b_4800,4b_24gb --steps 10" > "$OUT/lora.log" 2>&1
for f in agree gen_tp2_4b gen_tp2_12b lora; do echo "=== $f"; grep -E "^\||^#|tokens vs|^[A-Za-z0-9].*(grid|TP=)|rror" "$OUT/$f.log" | tail -24; done
