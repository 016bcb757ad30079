#!/usr/bin/env bash
# Device call 3 of the 2026-11-30 session, nvidia-h200-x2. Carried: .gpu3 = the NeMo wheel bundle without
# tensorstore (the image has it), the decord wheel, and 12 H.264 720p source videos written here with
# bench_prepare_data.write_videos (the GPU image has no PyAV to write them).
#   GPU 0: issue 15: tokenizer backends (bench_tokenizer.py), then prepare-data end to end (bench_prepare_data.py).
#   GPU 1: issue 12: decode step +gemm-attn / +fused-rope with a kernel profile; issue 16: the 24 GB LoRA run after
#          the recompute fix, and a profile of a LoRA step; issue 19: the GPU tier's 2-step recipe test.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/g3; rm -rf $L; mkdir -p "$OUT" $L/tier
W=.gpu3
[ -f /tmp/site/.ok ] || { rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile \
  --target /tmp/site $W/nemo_whl/*.whl $W/decord-*.whl $(python3 $W/nemo_whl/pick_opt.py) && touch /tmp/site/.ok; } || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
mkdir -p /tmp/prep/videos && cp $W/vids/*.mp4 /tmp/prep/videos/
( export CUDA_VISIBLE_DEVICES=0
  timeout 250 python3 bench/bench_tokenizer.py > "$L/tok.log" 2>&1
  timeout 280 python3 bench/bench_prepare_data.py --workdir /tmp/prep > "$L/prep.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 170 python3 bench/bench_generate.py --batch 1 --configs +sample-in-graph,+gemm-attn,+fused-rope \
    --profile 16 > "$L/gen.log" 2>&1
  OUT=$L GPUS=1 timeout 130 bash bench/gpu_lora.sh "--only 4b_24gb" > "$L/lora24.log" 2>&1
  OUT=$L/tier timeout 150 bash bench/gpu_test_tier.sh --gpu recipe > /dev/null 2>&1
  timeout 100 python3 bench/bench_recipe.py --factory cosmos_ar_4b_tealrobotsmall_tp1 --peft lora --steps 8 \
    --profile "$L" --label lora_4800 > "$L/lora_prof.log" 2>&1 ) &
wait
for f in tok prep gen lora24 lora_prof; do echo "=== $f"; grep -E "^\||^#|^[A-Za-z0-9].*(grid|GPU|H200|clips)|rror|RESULT" "$L/$f.log" | tail -40; done
echo "=== tier"; cat "$L/tier/gpu_tier.md" 2>/dev/null; tail -5 "$L/tier/gpu_tier.log" 2>/dev/null
cp $L/*.log $L/tier/gpu_tier.md $L/profile_*.md "$OUT"/ 2>/dev/null; rm -f "$OUT"/lora24.log; ls "$OUT"
