#!/usr/bin/env bash
# Tenth session (2026-12-02), one H200, carrying .gpu4. Issue 13: batch mode's writer thread again, measured with the
# batch's own totals because call a12's per-further-video difference swung with the batch of 1's load (38.7 / 41.6 s):
# --batches 3:1 (three lines of the guide's 9-frame video, int8 + FP8), "per video after init" = (main() - load - AR
# compile) / 3, in the order on (after a discarded batch), off (each write synchronous), on.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b12; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
W=nemo_cosmos_ar/inference/writer.py
ON='        self._pending.append((job, self._pool.submit(self._timed, fn)))'
OFF='        fut = Future(); fut.set_result(self._timed(fn)); self._pending.append((job, fut))  # A/B: synchronous'
run() { timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --batches 3:1 --timeout 150 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
run on1
swap "$W" "$ON" "$OFF"; BENCH_NO_DISCARD=1 run off1; swap "$W" "$OFF" "$ON"
BENCH_NO_DISCARD=1 run on2
for f in on1 off1 on2; do echo "=== $f"; grep -E "^\| dd" "$L/$f.log" | tail -1; done
