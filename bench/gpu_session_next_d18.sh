#!/usr/bin/env bash
# Prepared in the fifteenth session (2026-12-02) for a later one-H200 call (~8 min), carrying .gpu4, after
# `bash bench/gpu_fa4_install.sh a` and `... b` on the same warm machine. Issue 13: when the AR decode attention's
# split kernel lets the kernels after it launch. Now it calls gdc_launch_dependents at its start, so its combine
# and, through the combine's own early trigger, the next product's blocks launch while it still streams the cache
# (they take SM slots and issue weight loads beside it). "b" drops that trigger: the dependents then launch when the
# split kernel completes. Whole generate, int8 + FP8 + FA4, guardrails on, the guide's 9-frame prompt, each run a
# fresh process: a discarded warm run, then 3 pairs ("a" = as committed). Prediction: +-0.1 s; a micro-benchmark
# of attention kernels alone (call 14 of the fifteenth session) suggested the early launches may cost up to ~4 us a
# layer there, but the real step has products between the attentions.
set -uo pipefail
F=nemo_cosmos_ar/inference/decode_kernel.py
A=$'            tl.extra.cuda.gdc_launch_dependents()\n        bg = tl.program_id(0)'
B=$'        bg = tl.program_id(0)'
AB_ARGS=--guardrails bash bench/gpu_ab_e2e.sh "$F" "$A" "$B" 3 470
