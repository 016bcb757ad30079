#!/usr/bin/env bash
# Eighteenth session, after `bash bench/gpu_fa4_install.sh a` and `... b` on the same warm machine (one H200,
# carrying .gpu4, ~9 min). Issue 13. "new" = the Triton decode attention whose tiles stop before slot pos (the slot
# added after the loop from registers); "old" = commit 7cd9f34's kernel (the select only in the tile holding pos),
# carried as .gpu4/old_dk.py.
#   1. the GPU tier's attention test; the attention alone (write / both), new then old; the decode, new then old;
#   2. the whole generate with int8 + FP8 + FA4 and the guardrails, the guide's 9-frame prompt, each run a fresh
#      process: a discarded warm run, then new / old pairs while the call's time lasts.
# Prediction: the decode +1-3% over old; after initialisation ~29.0 s on a machine where old gives ~29.3.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/e21; rm -rf $L; mkdir -p $L
source bench/gpu_site.sh .gpu4
F=nemo_cosmos_ar/inference/decode_kernel.py; cp $F /tmp/new_dk.py; cp .gpu4/old_dk.py /tmp/old_dk.py
old() { cp /tmp/old_dk.py $F; }
new() { cp /tmp/new_dk.py $F; }
timeout 120 python3 bench/gpu_tier_run.py cuda_decode_attention > "$OUT/tier.log" 2>&1
att() { timeout 100 python3 bench/bench_decode_attention.py --batch 1 --bucket 0 --lengths 5120,6144,9216,12800 \
  --modes triton,triton-wo,triton-w > "$OUT/attn_$1.log" 2>&1; }
gen() { timeout 150 python3 bench/bench_generate.py --batch 1 --bucket 0 --check ${CHECK:-0} --configs +int8-fused,+int8-fused \
  > "$OUT/gen_$1.log" 2>&1; }
att new; old; att old; new
CHECK=32 gen new1; old; gen old1; new
e2e_setup
names=(warm)
E2E_TIMEOUT=90 e2e warm 460 --configs dd-int8-fp8 --guardrails
for i in 1 2 3; do
  new; E2E_TIMEOUT=90 e2e n$i 500 --configs dd-int8-fp8 --guardrails
  old; E2E_TIMEOUT=90 e2e o$i 500 --configs dd-int8-fp8 --guardrails
  names+=(n$i o$i)
done
new
grep -E "^\| test_|Error|error" "$OUT/tier.log" | head -5
for v in new old; do echo "== attention $v"; grep -E "^\| 1 \|" "$OUT/attn_$v.log"; done
for v in new1 old1; do echo "== decode $v"; grep -E "^\| \+int8" "$OUT/gen_$v.log"; done
e2e_report "${names[@]}"
