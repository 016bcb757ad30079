#!/usr/bin/env bash
# Seventeenth session, last call (one H200, carrying .gpu4, ~2 min on a started machine): gpu_session_next_d18.sh's
# question by the decode alone (no FA4 needed). The split attention kernel calls gdc_launch_dependents at its start,
# so the combine and, through it, the next product launch while it still streams the cache; "b" drops that trigger.
# Two processes (Triton compiles the kernel source once per process), 3,072 tokens after the 2-frame prompt, the
# fused int8 step twice each. Prediction: +-0.5%.
set -uo pipefail
source bench/gpu_site.sh .gpu4
F=nemo_cosmos_ar/inference/decode_kernel.py
A=$'            tl.extra.cuda.gdc_launch_dependents()\n        bg = tl.program_id(0)'
B=$'        bg = tl.program_id(0)'
run() { timeout 110 python3 bench/bench_generate.py --batch 1 --check 0 --max-new-tokens 3072 \
  --configs +int8-fused,+int8-fused 2>&1 | grep -E "^\| \+int8"; }
echo "a (trigger at the split kernel's start)"; run
swap "$F" "$A" "$B"
echo "b (no trigger)"; run
swap "$F" "$B" "$A"
