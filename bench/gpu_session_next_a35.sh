#!/usr/bin/env bash
# Prepared in the twenty-fourth session, not yet run (its device time ran out). One H200 carrying .gpu4, ~8 min,
# after `bash bench/gpu_fa4_install.sh a` and `... b` on the same warm machine. Issue 13:
#   1. the whole generate with the exact distribution at this session's final code (nucleus_kernel + coupled_kernel;
#      FA4, guardrails): --speculative-window 63, twice after a discarded warm run.
#      Prediction (a32: 31.5-31.7 s with a33's code; a34's step 3.53 -> 3.44 ms): ~31.1 s.
#   2. bench_overlap.py --exact with 8 connections: the next video's AR decode (bf16, L = 63) beside 7 DiT guided
#      steps (bf16), the DiT's thread started after the decode's capture (a34's try failed inside the capture).
#      Prediction: a gain only if the two streams share the SMs (d5, with one connection: none).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a35; rm -rf $L; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
e2e_setup
run() { E2E_TIMEOUT=95 e2e "$1" "$2" --configs "$3" --guardrails; }
run warm 150 dd-spec63; run g63 250 dd-spec63; run h63 330 dd-spec63
e2e_report warm g63 h63
timeout $((570 - SECONDS)) python3 bench/bench_overlap.py --exact --window 63 --tokens 7680 --dit-steps 7 \
  --connections 8 2>&1 | grep -vE "Warning|warn\(|pynvml" | tail -8 | tee "$OUT/overlap_8.log"
