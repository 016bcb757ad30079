#!/usr/bin/env bash
# Prepared in the twelfth session (2026-12-02) for a later one-H200 call (~5 min), carrying .gpu4, after
# `bash bench/gpu_fa4_install.sh a` and `... b` on the same warm machine. Issue 13 counted as NVIDIA counts its ~62 s
# (guardrails on: random weights that pass every video and find no face), on a machine other than call 9's, so the
# 29.5-29.9 s of the twelfth session is checked across machines: int8 + FP8 + FA4 three times, then generate's
# defaults (exact bf16) twice. Each run a fresh process, the guide's 9-frame prompt. Also the first H200 figures of
# the guardrails' load without transformers (guardrails/siglip.py, after call 9): the load parts' "guardrails" wait
# (0.6-1.2 s with transformers' import on the thread, call 8) and the tokenizer / decoder / AR loads beside it.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b15; rm -rf $L
source bench/gpu_site.sh .gpu4
e2e_setup
for n in warm q1 q2 q3; do e2e "$n" 330 --configs dd-int8-fp8 --guardrails; done
for n in d1 d2; do e2e "$n" 480 --configs dd --guardrails; done
e2e_report warm q1 q2 q3 d1 d2
