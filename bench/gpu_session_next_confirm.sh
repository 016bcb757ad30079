#!/usr/bin/env bash
# Prepared in the twenty-eighth session for the next: issue 13, the exact generate (`--speculative-window 63`, FA4,
# guardrails) on the committed code on another lease, as a74 ran it (29.5-29.7 s after init there), with the GPU's
# SM clock and power logged every 200 ms (to see whether the DiT's 20 s run at the power limit: the FA4 tiles gained
# 4-5% alone but 0.5% of the DiT in the whole generate, a68). One H200, after the FA4 install:
#   bash bench/gpu_fa4_install.sh a   # carry .fa4a
#   bash bench/gpu_fa4_install.sh b   # carry .fa4b
#   bash bench/gpu_session_next_confirm.sh   # carry .gpu4 (~5 min)
# If the runs after the lease's first are under 30 s after init, #13's goal holds on a second lease.
# Run in the twenty-ninth session as a80 (a fresh lease, the code of f9e1a68: 30.2-30.3 s, the DiT at the 700 W power
# limit) and a86 (another lease, with the DiT's cuBLAS epilogues: 29.7 s in all three runs).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/confirm; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
[ -f /tmp/fa4site/.b_ok ] || { echo "FA4 is not installed on this machine: run bench/gpu_fa4_install.sh a, then b"; exit 3; }
smi_start
e2e_setup
for n in warm g63 h63 i63; do E2E_TIMEOUT=95 e2e $n 480 --configs dd-spec63 --guardrails; done
e2e_report warm g63 h63 i63
smi_report
exit 0
