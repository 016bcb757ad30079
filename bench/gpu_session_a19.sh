#!/usr/bin/env bash
# Sixteenth session (2026-12-02), one H200 call (~8 min), carrying .gpu4, after `bash bench/gpu_fa4_install.sh a`
# and `... b` on the same warm machine. Issue 13: when the attention-out product's blocks may launch. The decode
# attention's combine kernel now lets its dependents launch only after its own griddepcontrol.wait, i.e. once the
# split kernel has finished, so the attention-out product's blocks (which issue their first weight loads before
# their own wait) start streaming weights only during the short combine. "b" triggers first and waits after: the
# product's blocks then launch while the split kernel still streams the cache, and their first loads are in flight
# when the attention ends. Correctness is unchanged (a dependent's griddepcontrol.wait waits for the whole combine
# grid, which itself waits for the split kernel). Whole generate, int8 + FP8 + FA4, guardrails on, the guide's
# 9-frame prompt, each run a fresh process: a discarded warm run, then 3 pairs ("a" = as committed).
# Prediction: -1 to -3 us a layer, AR decode -0.1 to -0.4 s.
set -uo pipefail
F=nemo_cosmos_ar/inference/decode_kernel.py
A=$'            tl.extra.cuda.gdc_wait()\n            tl.extra.cuda.gdc_launch_dependents()\n        bh = tl.program_id(0)'
B=$'            tl.extra.cuda.gdc_launch_dependents()\n            tl.extra.cuda.gdc_wait()\n        bh = tl.program_id(0)'
AB_ARGS=--guardrails bash bench/gpu_ab_e2e.sh "$F" "$A" "$B" 3 470
