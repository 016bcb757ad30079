#!/usr/bin/env bash
# Tenth session (2026-12-02), one H200, carrying .gpu4. Issue 13: batch mode's writer thread again, measured with the
# batch's own totals because call a12's per-further-video difference swung with the batch of 1's load (38.7 / 41.6 s):
# --batches 3:1 (three lines of the guide's 9-frame video, int8 + FP8), "per video after init" = (main() - load - AR
# compile) / 3, in the order on (after a discarded batch), off (each write synchronous), on.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/b12; rm -rf $L
source bench/gpu_site.sh .gpu4
e2e_setup
W=nemo_cosmos_ar/inference/writer.py
ON='        self._pending.append((job, self._pool.submit(self._timed, fn)))'
OFF='        fut = Future(); fut.set_result(self._timed(fn)); self._pending.append((job, fut))  # A/B: synchronous'
run() { E2E_TIMEOUT=150 e2e "$1" 9999 --configs dd-int8-fp8 --batches 3:1; }
run on1
swap "$W" "$ON" "$OFF"; BENCH_NO_DISCARD=1 run off1; swap "$W" "$OFF" "$ON"
BENCH_NO_DISCARD=1 run on2
e2e_report on1 off1 on2
