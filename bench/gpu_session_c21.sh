#!/usr/bin/env bash
# Eighteenth session, third call (one H200, carrying .gpu4, ~5 min). Issue 13: call b21 showed the Triton decode
# attention as the step calls it (this step's K/V written by the kernel, PDL) at 15.9 / 17.5 / 18.9 / 26.4 us a layer
# at 5,120 / 6,144 / 9,216 / 12,800 slots against 14.3 / 14.8 / 16.8 / 19.2 without (call a21): a cost that grows
# with the cache. Suspect: with the write, every tile of every program selected slot pos's K and V from registers
# (two 64 x 128 selects a tile). Now only the tile holding pos does ("new"); "old" is the code before.
# 1. the GPU tier's attention test (the Triton write path at tile edges too);
# 2. the attention alone, each of write / PDL / both, new then old;
# 3. the whole decode (+int8-fused, 7,680 tokens, bucket 0 as generate): new, old, new, old processes.
# Prediction: triton-w at 12,800 26.4 -> ~19.5 us; the decode +2-4%.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
F=nemo_cosmos_ar/inference/decode_kernel.py
NK=$'                if (pos >= n0) & (pos < n0 + BLOCK_N):  # only the tile holding it pays for the select\n                    kt = tl.where('
OK=$'                if True:  # only the tile holding it pays for the select\n                    kt = tl.where('
NV=$'                if (pos >= n0) & (pos < n0 + BLOCK_N):\n                    v = tl.where('
OV=$'                if True:\n                    v = tl.where('
timeout 120 python3 bench/gpu_tier_run.py cuda_decode_attention > "$OUT/tier.log" 2>&1
grep -E "^\| test_|Error|error" "$OUT/tier.log" | head -20
att() { timeout 100 python3 bench/bench_decode_attention.py --batch 1 --bucket 0 --lengths 5120,6144,9216,12800 \
  --modes triton,triton-p,triton-wo,triton-w > "$OUT/attn_$1.log" 2>&1; echo "== $1"; grep -E "^\| 1 \|" "$OUT/attn_$1.log"; }
gen() { timeout 150 python3 bench/bench_generate.py --batch 1 --bucket 0 --check 0 --configs +int8-fused,+int8-fused \
  > "$OUT/gen_$1.log" 2>&1; echo "== $1"; grep -E "^\| \+int8" "$OUT/gen_$1.log"; tail -1 "$OUT/gen_$1.log"; }
att new
swap "$F" "$NK" "$OK"; swap "$F" "$NV" "$OV"
att old
swap "$F" "$OK" "$NK"; swap "$F" "$OV" "$NV"
gen new1
swap "$F" "$NK" "$OK"; swap "$F" "$NV" "$OV"
gen old1
swap "$F" "$OK" "$NK"; swap "$F" "$OV" "$NV"
gen new2
swap "$F" "$NK" "$OK"; swap "$F" "$NV" "$OV"
gen old2
swap "$F" "$OK" "$NK"; swap "$F" "$OV" "$NV"
