#!/usr/bin/env bash
# Device call 3 of the 2026-11-30 afternoon session, carrying .gpu4 (megatron_core, PyAV and decord wheels). Runs on
# one H200, or on two (the e2e run then goes to the second GPU at the same time).
#   issue 12: the fused decode step (with the Triton kernel and with SDPA) against +sample-in-graph, with a profile;
#   issue 15: the fast tokenizer with the fused Haar transforms kept eager inside the graph (opaque_haar);
#   issue 13: the whole `cosmos-ar generate` for one video with the diffusion decoder (defaults of this commit).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/k3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
NG=$(nvidia-smi -L | wc -l); nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
e2e() {  # the fused step is generate's default on CUDA; if it failed in the bench, measure without it
  extra=""; grep -qE "^\| \+fused-step \| 1 \| [0-9.]+ \| [0-9]" "$L/gen.log" 2>/dev/null || extra="--fused-step off"
  [ "$NG" -gt 1 ] && extra=""
  timeout "$1" python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dv --generate-args "$extra" > "$L/e2e.log" 2>&1
}
if [ "$NG" -gt 1 ]; then ( export CUDA_VISIBLE_DEVICES=1; e2e 560 ) & fi
( export CUDA_VISIBLE_DEVICES=0
  timeout 175 python3 bench/bench_generate.py --batch 1 --configs +sample-in-graph,+fused-step,+fused-step-sdpa \
    --profile 16 > "$L/gen.log" 2>&1
  timeout 175 python3 bench/bench_tokenizer.py --budget-s 130 --best-batch 8 \
    --rows "eager:4,fast:4,fast:1,fast:best,fast-compiled-Haar:4" > "$L/tok.log" 2>&1
  if [ "$NG" -eq 1 ]; then e2e 215; fi )
wait
for f in gen tok e2e; do echo "=== $f"; grep -E "^\||^#|^[A-Za-z0-9].*(grid|GPU|H200|clips|tokens)|rror|Traceback" "$L/$f.log" | tail -40; done
cp $L/*.log "$OUT"/ 2>/dev/null; ls "$OUT"
