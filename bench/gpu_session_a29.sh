#!/usr/bin/env bash
# Twenty-third session, call a29 (one H200 carrying .gpu4, ~7 min). Issue 13: the committed code after a28 (verify
# attention 64 rows / 4 warps / 2 waves / 3 stages, nucleus_probs; cuBLAS products): the whole generate (random folders
# in the released layouts, the guide's 9-frame prompt, diffusion decoder on, DiT on SDPA, guardrails off) with the
# exact one-token defaults and --speculative-window 16 / 32 / 64, then the decode alone at L = 16 / 32 / 64.
# Predictions (a27: spec64 33.0 s, spec32 33.5 s after init; dd 40.3-40.7 s in c25): spec64 ~32.8 s, spec32 ~33.2 s,
# spec16 ~34.3 s; decode 11.8 / 10.2 / 9.4 s at L = 16 / 32 / 64.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a29; rm -rf $L; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
e2e_setup
run() { E2E_TIMEOUT=85 e2e "$1" "$2" --configs "$3"; }
run s64 200 dd-spec64; run dd 260 dd; run s32 320 dd-spec32; run s16 380 dd-spec16
e2e_report s64 dd s32 s16
[ "$SECONDS" -lt 300 ] || exit 0
timeout $((540 - SECONDS)) python3 bench/bench_speculative.py --runs 16:triton,32:triton,64:triton \
  > "$OUT/speculative.log" 2>&1
echo "speculative rc=$?"
grep -E "^\||^one-token|^AR stage" "$OUT/speculative.log" | cut -c1-300
