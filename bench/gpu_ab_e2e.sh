#!/usr/bin/env bash
# A same-machine A/B of the whole generate on one H200 (carry .gpu4), for any switch in the code:
#   bash bench/gpu_ab_e2e.sh FILE 'TEXT NOW' 'TEXT B' [PAIRS [LIMIT]]
# "a" runs the code as it is, "b" with TEXT NOW replaced by TEXT B in FILE (it must be there: a stale pattern would
# measure the same code twice). int8 + FP8, the guide's 9-frame prompt, each run a fresh process: a discarded warm
# run, then a / b PAIRS times (default 3), while the call's time lasts (~45 s a run). Prepared in the tenth session
# (2026-12-02); for issue 13 the next ones are (after bench/gpu_fa4_install.sh a and b, so the DiT runs FA4 as
# generate's default picks it)
#   bash bench/gpu_ab_e2e.sh nemo_cosmos_ar/cli/generate.py 'FULL_COLLECTION_EVERY = 100' 'FULL_COLLECTION_EVERY = 10'
#   bash bench/gpu_ab_e2e.sh nemo_cosmos_ar/inference/pipeline.py \
#     '    if rank == 0 and pending is not None:  # the diffusion decoder' '    if False:  # the diffusion decoder'
# (the rarer full collections, measured on CPU only; the decoder's load before the AR model's or after the prompt,
# which call c12 could not tell apart). AB_ARGS: more bench_generate_e2e.py arguments for every run (--guardrails).
set -uo pipefail
F=$1 A=$2 B=$3 PAIRS=${4:-3} LIMIT=${5:-520}  # LIMIT: no run starts after this many seconds of the call
OUT=${OUT:-/tmp/out}; L=/tmp/ab; rm -rf $L
source bench/gpu_site.sh .gpu4
e2e_setup
run() { E2E_TIMEOUT=${E2E_TIMEOUT:-90} e2e "$1" "$LIMIT" --configs dd-int8-fp8 ${AB_ARGS:-}; }
names=(warm)
run warm
for i in $(seq "$PAIRS"); do run a$i; swap "$F" "$A" "$B"; run b$i; swap "$F" "$B" "$A"; names+=(a$i b$i); done
e2e_report "${names[@]}"
