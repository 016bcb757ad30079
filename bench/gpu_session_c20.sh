#!/usr/bin/env bash
# Seventeenth session, third call (one H200, carrying .gpu4, ~9 min), after `bash bench/gpu_fa4_install.sh a` and
# `... b` on the same warm machine. Issue 13.
#   1. bench_gemv_fused.py fc1+glu: fc1's SwiGLU epilogue alone, its block sweep
#   2. the decode alone: the attention-out product prefetching its weights into L2 during the attention (PDL launches
#      it early; cp.async.bulk.prefetch.L2 before its wait), and every product doing so behind the kernel before it.
#      Prediction: proj from L2, ~-2 us a layer, +0-5%; every product: +-5% (they compete for the same bandwidth).
#      (Measured -0.5% / -12.6% and dropped: the +int8-fused-pf* configurations exist only at b720843, so step 2
#      needs that commit now.)
#   3. the whole generate with int8 + FP8 + FA4 and the guardrails, the guide's 9-frame prompt, each run a fresh
#      process: "f" = dd-int8-fp8, whose int8 kernel is now the fused step (fused_int8.py, auto at TP=1), against
#      "c" = dd-int8-fp8-cuda (the unfused CUDA kernel, the default before). A discarded warm run, then f / c pairs
#      while the call's time lasts. Prediction: AR decode -1.3% (~-0.16 s).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c20; rm -rf $L
source bench/gpu_site.sh .gpu4
timeout 100 python3 bench/bench_gemv_fused.py fc1+glu > "$OUT/fc1glu.log" 2>&1
c=+int8-fused,+int8-fused-pf,+int8-fused-pfall
timeout 170 python3 bench/bench_generate.py --batch 1 --check 0 --configs $c,$c > "$OUT/pf.log" 2>&1
e2e_setup
names=(warm)
E2E_TIMEOUT=90 e2e warm 500 --configs dd-int8-fp8 --guardrails
for i in 1 2 3; do
  E2E_TIMEOUT=90 e2e f$i 500 --configs dd-int8-fp8 --guardrails
  E2E_TIMEOUT=90 e2e c$i 500 --configs dd-int8-fp8-cuda --guardrails
  names+=(f$i c$i)
done
grep "^|" "$OUT/fc1glu.log"; grep -E "^\|" "$OUT/pf.log"
e2e_report "${names[@]}"
