#!/usr/bin/env bash
# Sixteenth session (2026-12-02), one H200 call (~8 min), carrying .gpu4, after `bash bench/gpu_fa4_install.sh a`
# and `... b` on the same warm machine. Issue 13, the AR decode attention's place in the PDL chain, three ways in one
# call (whole generate, int8 + FP8 + FA4, guardrails on, the guide's 9-frame prompt, each run a fresh process; a
# discarded warm run, then triples while the call's time lasts):
#   a   as before this session (decode_kernel.EARLY_TILE = False)
#   e   the split kernel loads its chunk's first K/V tile before griddepcontrol.wait (EARLY_TILE = True), so the cache
#       read starts while the QK norm/RoPE kernel runs
#   ce  e, and the combine kernel lets its dependents (the attention-out product) launch before its own wait, so the
#       product's first weight loads are in flight while the split kernel still runs (gpu_session_a19.sh's "b")
# Prediction: e -1 to -3 us a layer, ce another -1 to -3: AR decode -0.1 to -0.4 s each.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b19; rm -rf $L
source bench/gpu_site.sh .gpu4
F=nemo_cosmos_ar/inference/decode_kernel.py
E1='EARLY_TILE = True'; E0='EARLY_TILE = False'
C0=$'            tl.extra.cuda.gdc_wait()\n            tl.extra.cuda.gdc_launch_dependents()\n        bh = tl.program_id(0)'
C1=$'            tl.extra.cuda.gdc_launch_dependents()\n            tl.extra.cuda.gdc_wait()\n        bh = tl.program_id(0)'
run() { E2E_TIMEOUT=90 e2e "$1" 520 --configs dd-int8-fp8 --guardrails; }
e2e_setup
swap $F "$E1" "$E0"
run warm
names=(warm)
for i in 1 2; do
  run a$i
  swap $F "$E0" "$E1"; run e$i
  swap $F "$C0" "$C1"; run ce$i
  swap $F "$C1" "$C0"; swap $F "$E1" "$E0"
  names+=(a$i e$i ce$i)
done
e2e_report "${names[@]}"
