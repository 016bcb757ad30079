#!/usr/bin/env bash
# Fifteenth session (2026-12-02), the first call on a fresh H200 (no carry, ~2 min): the AR decode's Triton attention
# with its two new launch choices (`early_v`: each V tile's loads issued before the scores; `fused_combine`: the last
# split program of a group combines, no second kernel), swept with tile 64/128 x waves 2/4/8 x stages 2/3 at 6,144 /
# 9,216 / 12,800 filled slots (batch 1, 16 layers' caches in one CUDA graph). The best choice summed over the three
# lengths goes to /tmp/best_attn.txt, which gpu_session_d16.sh reads on the same warm machine.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONWARNINGS=ignore
timeout 400 python3 bench/bench_decode_attention.py --batch 1 --lengths 6144,9216,12800 --modes triton --sweep \
  --grid loads --best-out /tmp/best_attn.txt 2>&1 | grep -vE "Warning|warn\(" > "$OUT/sweep.log"
grep -E "^\| 1 \| [0-9]+ \| [0-9]+ \| triton" "$OUT/sweep.log"; tail -3 "$OUT/sweep.log"
# the 6 fastest choices per length
for n in 6144 9216 12800; do grep -E "^\| 1 \| $n \| (64|128) \|" "$OUT/sweep.log" | head -6; done
cp /tmp/best_attn.txt "$OUT/" 2>/dev/null; cat /tmp/best_attn.txt 2>/dev/null; echo
