#!/usr/bin/env bash
# Twenty-fourth session, call a32 (one H200 carrying .gpu4, ~9 min), after `bash bench/gpu_fa4_install.sh a` and
# `... b` on the same warm machine. Issue 13: the exact output distribution with everything NVIDIA counts on: the
# whole generate (random folders in the released layouts, the guide's 9-frame prompt, diffusion decoder on, the DiT's
# attention on FlashAttention-4 (`auto`), random guardrails that pass) with --speculative-window 63 / 31 (a31: their
# L + 1 rows fill the verify attention's blocks; 3.70 / 3.25 ms a step), each run a fresh process; a discarded first
# run fills the kernel caches; then the exact one-token defaults for reference.
# Prediction (a29 on SDPA without guardrails: spec64 33.5 s, spec32 33.9; FA4 -0.6 to -1.1 s; a31's decode at L = 63
# -0.4 s; guardrails +0.1-0.2): spec63 ~32.3 s, spec31 ~32.8 s, dd ~40.5 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a32; rm -rf $L; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
e2e_setup
run() { E2E_TIMEOUT=95 e2e "$1" "$2" --configs "$3" --guardrails; }
run warm 200 dd-spec63; run g63 300 dd-spec63; run g31 380 dd-spec31; run h63 450 dd-spec63; run dd 470 dd
e2e_report warm g63 g31 h63 dd
