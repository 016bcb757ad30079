#!/usr/bin/env bash
# Twenty-third session, call a27 (one H200 carrying .gpu4, ~8 min). Issue 13, the speculative step after call a26:
# verify_kernel's defaults now 64 rows / 4 warps / 2 waves (a26's sweep), and the top-p distribution as
# sample_kernel.nucleus_probs (bf16 sort + Triton tiles) instead of the torch ops.
# Predictions: accept/reject alone 0.36 -> ~0.15 ms at L = 16, 0.74 -> ~0.35 at L = 64; a step 3.52 -> ~3.2 ms (L = 16),
# 4.71 -> ~3.9 ms (L = 64); AR 13.4 -> ~12.2 s (L = 16), 11.5 -> ~9.6 s (L = 64); whole generate spec64 34.6 -> ~32.7 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a27; rm -rf $L; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/gpu_tier_run.py nucleus_probs verify_attention speculative > "$OUT/tier.log" 2>&1
echo "tier rc=$?"
grep "^| test_" "$OUT/tier.log" | cut -c1-300
grep -E "Error|assert" "$OUT/tier.log" | head -5 | cut -c1-300
timeout 150 python3 bench/bench_verify_parts.py > "$OUT/parts.log" 2>&1
echo "parts rc=$?"
grep -E "^best|^\| [0-9]+ \| (torch|auto)" "$OUT/parts.log" | cut -c1-200
timeout 220 python3 bench/bench_speculative.py --runs 16:triton,32:triton,64:triton > "$OUT/speculative.log" 2>&1
echo "speculative rc=$?"
grep -E "^\||^one-token|^AR stage" "$OUT/speculative.log" | cut -c1-300
e2e_setup
E2E_TIMEOUT=85 e2e s64 480 --configs dd-spec64
E2E_TIMEOUT=85 e2e s32 540 --configs dd-spec32
e2e_report s64 s32
