#!/usr/bin/env bash
# Twenty-eighth session, a74 (one H200, after bench/gpu_fa4_install.sh a / b on the same warm machine (a72-a73);
# carry .gpu4). Issue 13: (1) bench/bench_encode_parts.py, the MP4 encode whole against cut into runs encoded side
# by side (nemo_cosmos_ar/x264.py) at 33 x 640 x 1024, noise and smooth; (2) the whole exact generate on the committed
# code (FA4's 192 x 128 tiles, the cut CV decode, the MP4 encode in two runs), four fresh processes.
# Predicted: x264 keeps ~6 of 16 cores busy on the noise clip (1.06 s, a71), two runs ~0.6-0.7 s; the write wait
# 0.6-0.7 -> 0.2-0.4 s; after init ~29.5-29.7 s on a71's machine (29.8-30.0 s there).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a74; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
[ -f /tmp/fa4site/.b_ok ] || { echo "FA4 is not installed on this machine: run bench/gpu_fa4_install.sh a, then b"; exit 3; }
nproc
timeout 120 python3 bench/bench_encode_parts.py 2>&1 | grep -vE "Warning|warn\(" | tee "$OUT/encode_parts.log" | tail -12
e2e_setup
for n in warm g63 h63 i63; do E2E_TIMEOUT=95 e2e $n 480 --configs dd-spec63 --guardrails; done
e2e_report warm g63 h63 i63
exit 0
