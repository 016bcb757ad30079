#!/usr/bin/env bash
# Eighteenth session, fourth call (one H200, carrying .gpu4, ~4 min). Issue 13: call c21's fix (the select only in
# the tile holding pos) gave the decode +1.7%, but the attention with the write still cost 26.6 against 19.6 us at
# 12,800 slots alone. Now the tiles stop before slot pos and the program holding it adds that slot after its loop
# from registers (one more online-softmax step in fp32): the loop is the plain kernel's ("new"). "old" = call c21's.
# Same measurements as c21. Prediction: triton-w at 12,800 ~19.5 us; the decode another +1-3%.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/gpu_tier_run.py cuda_decode_attention > "$OUT/tier.log" 2>&1
grep -E "^\| test_|Error|error" "$OUT/tier.log" | head -20
cp .gpu4/old_dk.py /tmp/old_dk.py  # commit 7cd9f34's kernel, carried
F=nemo_cosmos_ar/inference/decode_kernel.py; cp $F /tmp/new_dk.py
att() { timeout 100 python3 bench/bench_decode_attention.py --batch 1 --bucket 0 --lengths 5120,6144,9216,12800 \
  --modes triton,triton-wo,triton-w > "$OUT/attn_$1.log" 2>&1; echo "== $1"; grep -E "^\| 1 \|" "$OUT/attn_$1.log"; }
gen() { timeout 150 python3 bench/bench_generate.py --batch 1 --bucket 0 --check ${CHECK:-0} --configs +int8-fused,+int8-fused \
  > "$OUT/gen_$1.log" 2>&1; echo "== $1"; grep -E "^\| \+int8" "$OUT/gen_$1.log"; tail -1 "$OUT/gen_$1.log"; }
att new
cp /tmp/old_dk.py $F; att old; cp /tmp/new_dk.py $F
CHECK=32 gen new1
cp /tmp/old_dk.py $F; gen old1; cp /tmp/new_dk.py $F
gen new2
cp /tmp/old_dk.py $F; gen old2; cp /tmp/new_dk.py $F
