#!/usr/bin/env bash
# Twenty-eighth session, a71 (one H200, after bench/gpu_fa4_install.sh a / b on the same warm machine (a69-a70);
# carry .gpu4). Issue 13: (1) bench/bench_cv_cut.py, the CV8x8x8 decode of the whole 8-latent-frame chunk against
# the 5 frames the 33 kept frames need (the pipeline now decodes only those: last_chunk_latent_frames), released
# sizes, bf16, random weights; (2) the whole exact generate on the committed code (FA4's 192 x 128 tiles + the cut
# CV decode), four fresh processes.
# Predicted: CV decode -0.11 s (call a7: 428 -> 315 ms); after init ~30.1-30.3 s (a68: 30.3-30.4 s with the tiles).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a71; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
[ -f /tmp/fa4site/.b_ok ] || { echo "FA4 is not installed on this machine: run bench/gpu_fa4_install.sh a, then b"; exit 3; }
timeout 150 python3 bench/bench_cv_cut.py --reps 5 2>&1 | grep -vE "Warning|warn\(" | tee "$OUT/cv_cut.log" | tail -20
e2e_setup
for n in warm g63 h63 i63; do E2E_TIMEOUT=95 e2e $n 500 --configs dd-spec63 --guardrails; done
e2e_report warm g63 h63 i63
exit 0
