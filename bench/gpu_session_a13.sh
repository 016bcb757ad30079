#!/usr/bin/env bash
# Eleventh session (2026-12-02), one H200 kept warm after `bash bench/gpu_fa4_install.sh a` and `... b` (carry .gpu4):
# the whole generate with the DiT's attention by FlashAttention-4 ("a": generate's default "auto", which picks it when
# installed) against torch SDPA's cuDNN ("b": the default swapped to "sdpa"), 3 pairs, each run a fresh process.
set -uo pipefail
[ -f /tmp/fa4site/.b_ok ] || { echo "FlashAttention-4 is not on this machine: run bench/gpu_fa4_install.sh a, b first"; exit 3; }
K="  # the DiT's attention kernel"
bash bench/gpu_ab_e2e.sh nemo_cosmos_ar/cli/generate_args.py "default=\"auto\",$K" "default=\"sdpa\",$K" "${1:-3}"
