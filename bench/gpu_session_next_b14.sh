#!/usr/bin/env bash
# Prepared in the eleventh session (2026-12-02) for a later one-H200 call (~5 min), carrying .gpu4, after
# `bash bench/gpu_fa4_install.sh a` and `... b` on the same warm machine. Issue 13, counted as NVIDIA counts its ~62 s:
# the whole generate with the guardrails on (random weights that pass every video and find no face; SigLIP so400m
# + the safety classifier + RetinaFace-R50), int8 + FP8 + FA4, the guide's 9-frame prompt, each run a fresh process.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b14; rm -rf $L
source bench/gpu_site.sh .gpu4
e2e_setup
names=(warm g1 g2 g3 g4)
for n in "${names[@]}"; do e2e "$n" 420 --configs dd-int8-fp8 --guardrails; done
e2e_report "${names[@]}"
