#!/usr/bin/env bash
# Tenth session (2026-12-02), one H200, carrying .gpu4; the session's last ~6 device minutes. Issue 13: the diffusion
# decoder's background load started beside the AR model load ("early", the code now: it then overlaps less of the AR
# decode, which it slowed to 583-587 tokens/s in call a11) against after the prompt ("late", as in call a11). int8 +
# FP8, the guide's 9-frame prompt, fresh processes: warm (discarded), early, late, early, late while time is left.
# As it ran, the script wrote its own loop with runs named early1, late1, ...; the same A/B is now gpu_ab_e2e.sh's
# (runs a1 = early, b1 = late, ...).
set -uo pipefail
exec bash bench/gpu_ab_e2e.sh nemo_cosmos_ar/inference/pipeline.py \
  '    if rank == 0 and pending is not None:  # the diffusion decoder' '    if False:  # the diffusion decoder' 2 270
