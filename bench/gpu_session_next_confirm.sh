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
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv,noheader -lms 200 > "$OUT/smi.csv" 2>&1 &
smi=$!
e2e_setup
for n in warm g63 h63 i63; do E2E_TIMEOUT=95 e2e $n 480 --configs dd-spec63 --guardrails; done
kill $smi 2>/dev/null
e2e_report warm g63 h63 i63
# the clock and power while the GPU was busy (power over 300 W): median, 10th percentile, and the throttle reasons seen
python3 - "$OUT/smi.csv" <<'PY'
import collections, statistics, sys
rows = [r.split(", ") for r in open(sys.argv[1]) if r.count(",") >= 6]
busy = [r for r in rows if r[3].endswith(" W") and float(r[3][:-2]) > 300]
if busy:
    clk = sorted(float(r[1].split()[0]) for r in busy)
    pw = sorted(float(r[3][:-2]) for r in busy)
    print(f"busy samples {len(busy)} of {len(rows)}: SM clock median {statistics.median(clk):.0f} MHz, "
          f"p10 {clk[len(clk) // 10]:.0f}; power median {statistics.median(pw):.0f} W of {busy[0][4]}")
    print("throttle reasons:", collections.Counter(r[6].strip() for r in busy).most_common(4))
PY
exit 0
