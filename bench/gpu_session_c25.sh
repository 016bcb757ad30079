#!/usr/bin/env bash
# Twenty-second session, one H200 carrying .gpu4 (~6 min). Issue 13: the committed code after call b25 (verify_kernel
# kept; accept_kernel removed: 0.43 / 0.55 ms against the torch ops' 0.36 ms at L = 16). The GPU tier's speculative and
# verify-attention tests; the decode at L = 32 and 64 on verify_kernel with the torch accept/reject; the whole
# generate with --speculative-window 32 and 64 (random folders, the guide's 9-frame prompt, no FA4).
# Predictions: L = 32 ~3.9 ms a step, ~12.0 s; L = 64 ~4.5 ms, ~11.5 s (a25's single-program kernel runs: 11.95 and
# 11.43 s); after init (b25: dd 40.3-40.7 s, spec16 37.5 s): spec32 ~36.5 s, spec64 ~36 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c25; rm -rf $L; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
timeout 100 python3 bench/gpu_tier_run.py speculative verify_attention > "$OUT/tier.log" 2>&1
echo "tier rc=$?"
grep "^| test_" "$OUT/tier.log" | cut -c1-300
grep -E "Error|assert" "$OUT/tier.log" | head -5 | cut -c1-300
timeout 200 python3 bench/bench_speculative.py --runs 32:triton,64:triton > "$OUT/speculative.log" 2>&1
echo "rc=$?"
grep -E "^\||^one-token|^AR stage" "$OUT/speculative.log" | cut -c1-300
e2e_setup
run() { E2E_TIMEOUT=85 e2e "$1" 420 --configs "$2"; }
run s32 dd-spec32; run s64 dd-spec64
e2e_report s32 s64
