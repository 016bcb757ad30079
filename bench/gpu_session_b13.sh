#!/usr/bin/env bash
# Eleventh session (2026-12-02), one H200 after `bash bench/gpu_fa4_install.sh a` and `... b` (carry .gpu4): the
# committed code as a user runs it, FlashAttention-4 installed: generate's defaults ("dd": bf16 everywhere) and the
# fastest measured flags ("dd-int8-fp8"), the guide's 9-frame prompt, each run a fresh process, while the call lasts.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b13; rm -rf $L
source bench/gpu_site.sh .gpu4
e2e_setup
run() { E2E_TIMEOUT=85 e2e "$1" 400 --configs "$2"; }
run warm dd-int8-fp8; run d1 dd; run f1 dd-int8-fp8; run d2 dd; run f2 dd-int8-fp8; run f3 dd-int8-fp8
run f4 dd-int8-fp8
e2e_report warm d1 f1 d2 f2 f3 f4
