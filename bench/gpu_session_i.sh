#!/usr/bin/env bash
# Device call 2 of the 2026-11-30 afternoon session, nvidia-h200-x2, carrying .gpu4 (megatron_core, PyAV and decord
# wheels; no NeMo: generation, the tokenizer and prepare-data do not import it).
#   GPU 0: issue 13: the whole `cosmos-ar generate` for one video (bench_generate_e2e.py: DV decoder, diffusion decoder,
#          the guide's offload flags), each configuration a fresh process.
#   GPU 1: issue 12: the Triton split-K decode attention (micro-bench, then the decode step); issue 15: tokenizer rows
#          that isolate the fast decode's 44.4 dB.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/i2; rm -rf $L; mkdir -p "$OUT" $L
[ -f /tmp/site2/.ok ] || { rm -rf /tmp/site2 && python3 -m pip install -q --no-index --no-deps --no-compile \
  --target /tmp/site2 .gpu4/*.whl && touch /tmp/site2/.ok; } || exit 1
export PYTHONPATH=/tmp/site2:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
( export CUDA_VISIBLE_DEVICES=0
  timeout 540 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dv,dd-offload-all > "$L/e2e.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 45 python3 -m pytest tests/test_decode_kernel.py -q -p no:cacheprovider > "$L/ktest.log" 2>&1
  timeout 80 python3 bench/bench_decode_attention.py > "$L/attn.log" 2>&1
  timeout 200 python3 bench/bench_generate.py --batch 1 --configs +sample-in-graph,+triton-attn --profile 16 > "$L/gen.log" 2>&1
  timeout 160 python3 bench/bench_tokenizer.py --budget-s 120 \
    --rows "eager:4,fast-no-cudnn.benchmark:4,fast-unfused-Haar:4,+fused Haar:4" > "$L/tok.log" 2>&1
  timeout 50 python3 bench/bench_decode_attention.py --batch 1 --sweep > "$L/sweep.log" 2>&1 ) &
wait
tail -3 $L/ktest.log
for f in e2e attn gen tok sweep; do echo "=== $f"; grep -E "^\||^#|^[A-Za-z0-9].*(grid|GPU|H200|clips|tokens)|rror|Traceback" "$L/$f.log" | tail -40; done
cp $L/*.log "$OUT"/ 2>/dev/null; ls "$OUT"
