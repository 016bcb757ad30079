#!/usr/bin/env bash
# A record of the call: rows_kernel, bench_rows.py and --verify-products were removed after it (commit 7a1b747 has
# them), so it no longer runs on later commits.
# Twenty-fifth session, call a37 (one H200 carrying .gpu4, ~9 min, right after a36 on the same warm machine: FA4 and
# /tmp/rows_best.json from a36). Issue 13: the whole generate with the exact distribution on this session's code
# (--speculative-window 63, FA4, guardrails): a discarded warm run, two runs on rows_kernel, one on cuBLAS
# (--verify-products cublas) for the same-machine difference; then, with time left, bench_overlap.py --exact with 8
# connections (a34's overlapped part failed in its capture; the DiT thread now starts after it).
# Prediction: ~30.1 s after init on rows_kernel (a32: 31.5-31.7 s with a33's code; a34 -0.4 s, rows_kernel -1.0 s).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a37; rm -rf $L; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
[ -f /tmp/rows_best.json ] && export COSMOS_AR_ROWS_CONFIGS=/tmp/rows_best.json
echo "rows configs: ${COSMOS_AR_ROWS_CONFIGS:-rows_kernel.CONFIGS}"
e2e_setup
run() { E2E_TIMEOUT=95 e2e "$1" "$2" --configs "$3" --guardrails; }
run warm 150 dd-spec63; run g63 250 dd-spec63; run c63 330 dd-spec63-cublas; run h63 410 dd-spec63
e2e_report warm g63 c63 h63
[ "$SECONDS" -lt 420 ] && timeout $((585 - SECONDS)) python3 bench/bench_overlap.py --exact --window 63 --tokens 7680 \
  --dit-steps 7 --connections 8 2>&1 | grep -vE "Warning|warn\(|pynvml" | tail -8 | tee "$OUT/overlap_8.log"
exit 0
