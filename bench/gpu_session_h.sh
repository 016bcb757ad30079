#!/usr/bin/env bash
# Device call 1 of the 2026-11-30 afternoon session, nvidia-h200-x2, carrying .gpu3 (the NeMo wheel bundle without
# tensorstore, the decord wheel, 12 H.264 720p source videos made on the CPU machine with bench_prepare_data.write_videos).
#   GPU 0: issue 15: the fast tokenizer after the Haar-rounding fix (agreement with eager bf16, speed, compile), then
#          prepare-data end to end on 60 source files (the 12 videos, each present 5 times: 240 disjoint clips).
#   GPU 1: issue 12: +flex-attn decode with a kernel profile; issue 16: LoRA after the frozen-weight backward fix.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/h1; rm -rf $L; mkdir -p "$OUT" $L
W=.gpu3
source bench/gpu_site.sh $W nemo
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
mkdir -p /tmp/prep/videos && cp $W/vids/*.mp4 /tmp/prep/videos/
for i in $(seq 12 59); do cp /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
( export CUDA_VISIBLE_DEVICES=0
  timeout 300 python3 bench/bench_tokenizer.py --budget-s 240 \
    --rows "eager:4,fast:4,fast:1,eager:1,fast:best,fast-inductor-reductions:4,fast+channels_last:4" > "$L/tok.log" 2>&1
  timeout 250 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 60 --budget-s 200 \
    --rows "procs,procs+fast,2 workers+fast" > "$L/prep.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 230 python3 bench/bench_generate.py --batch 1 --configs +sample-in-graph,+flex-attn \
    --profile 16 > "$L/gen.log" 2>&1
  python3 -c "import nemo.collections.llm" 2>/dev/null
  OUT=$L GPUS=1 timeout 200 bash bench/gpu_lora.sh "--only 4b_4800,4b_12800" > "$L/lora.log" 2>&1
  timeout 110 python3 bench/bench_recipe.py --factory cosmos_ar_4b_tealrobotsmall_tp1 --peft lora --steps 8 \
    --profile "$L" --label lora_4800 > "$L/lora_prof.log" 2>&1 ) &
wait
for f in tok prep gen lora lora_prof; do echo "=== $f"; grep -E "^\||^#|^[A-Za-z0-9].*(grid|GPU|H200|clips)|rror|RESULT" "$L/$f.log" | tail -45; done
cp $L/*.log $L/profile_*.md "$OUT"/ 2>/dev/null; ls "$OUT"
