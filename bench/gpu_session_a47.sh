#!/usr/bin/env bash
# Twenty-sixth session, calls a47-a50 (one H200), run as inline commands; this script holds them. Each "run" call must
# follow the last within 30 s; FA4 first: `bash bench/gpu_fa4_install.sh a` (carry .fa4a), then `b` (carry .fa4b).
#   a47 (carry .gpu4, after the FA4 install): bench_verify_fa4.py, the verify attention on FlashAttention-4 against
#       verify_kernel (it was refused on sm90: "SplitKV not supported on SM 9.0").
#   a48 (carry .gpu4): 13 more launch choices for the verify attention at M = 64 / 32 (the default won).
#   a49-a50: the FA4 install on a fresh machine, then the whole generate with the exact distribution, four runs.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a50; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
case ${1:-a50} in
  a47) timeout 420 python3 bench/bench_verify_fa4.py 2>&1 | grep -vE "Warning|warn\(|pynvml" | tail -30 ;;
  a48)
    timeout 400 python3 bench/bench_verify_parts.py --parts attention --rows 64,32 --choices "64,4,2,64,3;64,4,2,128,2;\
64,4,2,128,3;128,8,2,64,3;128,8,2,128,2;128,8,2,128,3;128,8,1,128,2;128,8,1,64,3;64,4,2,64,4;64,4,2,32,4;64,8,2,64,3;\
128,4,2,64,3;64,4,1,64,3" 2>&1 | grep -vE "Warning|warn\(|pynvml" | tail -60 ;;
  a50)
    e2e_setup
    for n in warm g63 h63 i63; do E2E_TIMEOUT=95 e2e $n 440 --configs dd-spec63 --guardrails; done
    e2e_report warm g63 h63 i63 ;;
esac
exit 0
