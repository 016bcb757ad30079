#!/usr/bin/env bash
# Prepared in the fifteenth session (2026-12-02) for a later one-H200 call (~7 min), carrying .gpu4, after
# `bash bench/gpu_fa4_install.sh a` and `... b` on the same warm machine (see that script's header to rebuild the
# carried folders). Issue 13: the QK norms and RoPE inside the decode attention kernel (engine.qk_in_attention, built
# and tested on CPU in the fifteenth session, not yet run on a GPU): first the GPU tier's test of it (abort if it
# fails), then the whole generate A/B with the guardrails on (int8 + FP8 + FA4, the guide's 9-frame prompt, each run
# a fresh process): "a" = off (as committed), "b" = on; a discarded warm run, then 3 pairs.
# Predicted: one compiled kernel less per layer, -2 to -3 us a layer, AR decode -0.25 to -0.35 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/gpu_tier_run.py qk_norm 2>&1 | grep -vE "Warning|warn\(" | tail -5 | tee "$OUT/tier.log"
grep -q "| pass |" "$OUT/tier.log" || exit 5
AB_ARGS=--guardrails bash bench/gpu_ab_e2e.sh nemo_cosmos_ar/inference/engine.py \
  'self.qk_in_attention = False' 'self.qk_in_attention = True' 3 470
