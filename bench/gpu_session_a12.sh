#!/usr/bin/env bash
# Tenth session (2026-12-02), one H200, carrying .gpu4. Issue 13: batch mode's writer thread (inference/writer.py:
# video k's MP4 encoded while video k+1 generates), as a same-machine A/B of the steady per-video time, int8 + FP8 on
# the guide's 9-frame prompt: --per-video-only = a discarded batch of 1, then a batch of 1 and a batch of 3 in fresh
# processes; (main(3) - main(1)) / 2 is one more video once loaded. "off" makes each write synchronous again (the
# writer hands back a finished Future), the same code otherwise. First, bench_attention_split.py: the guided DiT
# attention as one batch-2 call against two batch-1 calls.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a12; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 60 python3 bench/bench_attention_split.py > "$L/attn.log" 2>&1; cat "$L/attn.log"; cp "$L/attn.log" "$OUT"/
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
W=nemo_cosmos_ar/inference/writer.py
ON='        self._pending.append((job, self._pool.submit(self._timed, fn)))'
OFF='        fut = Future(); fut.set_result(self._timed(fn)); self._pending.append((job, fut))  # A/B: synchronous'
run() { timeout 250 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --per-video-only --timeout 150 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
run on
swap "$W" "$ON" "$OFF"; run off; swap "$W" "$OFF" "$ON"
for f in on off; do echo "=== $f"; grep -E "^\| dd|^# " "$L/$f.log" | tail -4; done
