#!/usr/bin/env bash
# Prepared in the fourteenth session (2026-12-02) for a later one-H200 call (~6 min), carrying .gpu4, after
# `bash bench/gpu_fa4_install.sh a` and `... b` on the same warm machine. Issue 13 on another machine, so the
# fourteenth session's 29.3-29.6 s after initialisation (one machine, DiT 15.2-15.3 s) is checked across machines
# (run in the fifteenth session on machine C: 29.5-30.0 s, in the sixteenth on machine F: 28.9-29.1 s; rerun it on
# further machines): first the GPU tier's test
# of the top-p Triton kernels (tokens against the torch ops at 64,000 tokens, a CUDA graph against eager; passed in
# the fifteenth session), then int8 + FP8 + FA4 with the guardrails four times, then generate's defaults (exact bf16)
# once. Each run a fresh process, the guide's 9-frame prompt.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a15; rm -rf $L
source bench/gpu_site.sh .gpu4
timeout 120 python3 bench/gpu_tier_run.py top_p 2>&1 | grep -vE "Warning|warn\(" | tail -6 | tee "$OUT/tier_top_p.log"
e2e_setup
for n in warm q1 q2 q3; do e2e "$n" 400 --configs dd-int8-fp8 --guardrails; done
e2e d1 500 --configs dd --guardrails
e2e_report warm q1 q2 q3 d1
