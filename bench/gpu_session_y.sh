#!/usr/bin/env bash
# Device call 4 of the 2026-11-30 late session, nvidia-h200-x2, carrying .gpu4. Issue 13: why the DiT steps 2.39 s
# inside generate and 1.87 s alone: bench_dd_after_ar.py, each variant a fresh process; GPU 0 and GPU 1 in parallel.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/y1; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
(export CUDA_VISIBLE_DEVICES=0; for b in none engine generate-nograph; do
  taskset -c 0-15 timeout 120 python3 bench/bench_dd_after_ar.py --before $b > "$L/g0_$b.log" 2>&1; done) &
(export CUDA_VISIBLE_DEVICES=1; for b in import generate dit-first; do
  taskset -c 16-31 timeout 120 python3 bench/bench_dd_after_ar.py --before $b > "$L/g1_$b.log" 2>&1; done) &
wait
echo "| before | what | first s | median s | steps |"; echo "|---|---|---|---|---|"
for f in $L/*.log; do grep -E "^\|" "$f" || (echo "$f"; grep -E "rror|Traceback" "$f" | tail -3); done
cp $L/*.log "$OUT"/ 2>/dev/null
