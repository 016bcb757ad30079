#!/usr/bin/env bash
# Twenty-eighth session, a77 (after bench/gpu_fa4_install.sh a / b on the same warm machine, a75-a76; carry .gpu4):
# the last of the session's device time, the whole exact generate on another machine, two fresh processes (the first
# pays this machine's cold Triton / inductor / FA4 caches). Same code and flags as a74. (Not finished: the
# session's device time ran out in the first run; a fresh machine's setup took 57 s.)
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a77; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
[ -f /tmp/fa4site/.b_ok ] || { echo "FA4 is not installed on this machine: run bench/gpu_fa4_install.sh a, then b"; exit 3; }
e2e_setup
for n in warm g63; do E2E_TIMEOUT=90 e2e $n 200 --configs dd-spec63 --guardrails; done
e2e_report warm g63
exit 0
