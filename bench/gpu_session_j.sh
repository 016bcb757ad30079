#!/usr/bin/env bash
# Device call 2 of the 2026-11-30 afternoon session on one H200 (nvidia-h200-x2 was not lent at the time), carrying
# .gpu4 (megatron_core, PyAV and decord wheels; no NeMo: generation, the tokenizer and prepare-data do not import it).
#   issue 12: the Triton split-K decode attention (native kernel tests, micro-bench, the decode step with a profile);
#   issue 15: tokenizer rows that isolate the fast decode's 44.4 dB.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/j2; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout 45 python3 -m pytest tests/test_decode_kernel.py -q -p no:cacheprovider > "$L/ktest.log" 2>&1
tail -3 $L/ktest.log
timeout 80 python3 bench/bench_decode_attention.py > "$L/attn.log" 2>&1
timeout 200 python3 bench/bench_generate.py --batch 1 --configs +sample-in-graph,+triton-attn --profile 16 > "$L/gen.log" 2>&1
timeout 150 python3 bench/bench_tokenizer.py --budget-s 110 \
  --rows "eager:4,fast-no-cudnn.benchmark:4,fast-unfused-Haar:4,+fused Haar:4" > "$L/tok.log" 2>&1
for f in attn gen tok; do echo "=== $f"; grep -E "^\||^#|^[A-Za-z0-9].*(grid|GPU|H200|clips|tokens)|rror|Traceback" "$L/$f.log" | tail -42; done
cp $L/*.log "$OUT"/ 2>/dev/null; ls "$OUT"
