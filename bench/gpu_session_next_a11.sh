#!/usr/bin/env bash
# Prepared in the ninth session (2026-12-01) for a later one-H200 call, carrying .gpu4. Issue 13: two overlaps with
# the model loads, as a same-machine A/B ("off" turns both off): the input clip read on a thread while the models load
# (Runner.prefetch_input; 0.58-0.67 s for 9 frames at 720p on the 2-core CPU) and the prompt encoded on a thread while
# the AR model loads (Runner.prompt_beside; the encode took 0.4-0.7 s after init on the H200). On top of the rest of
# the session (the pinned-buffer decoder load, the DV tokenizer freed without a collection, uint8 frames on the GPU).
# int8 + FP8, the guide's 9-frame prompt. Runs: warm (discarded), on, off, on, off; read after init (the last
# column), encode, other, and main(): work moved beside a load leaves "after init" but may lengthen the load.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/a11; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
P=nemo_cosmos_ar/inference/pipeline.py
off() { sed -i -e 's/^    runner.prefetch_input(job)  # read while the models load/    pass  # runner.prefetch_input(job)  # read while the models load/' \
  -e 's/^        if not opts.offload_ar_model:  # the prompt encoded on a thread/        if False:  # the prompt encoded on a thread/' $P; }
on() { sed -i -e 's/^    pass  # runner.prefetch_input(job)  # read while the models load/    runner.prefetch_input(job)  # read while the models load/' \
  -e 's/^        if False:  # the prompt encoded on a thread/        if not opts.offload_ar_model:  # the prompt encoded on a thread/' $P; }
run() { timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --timeout 90 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
on; run warm; run on1; off; run off1; on; run on2; off; run off2; on
grep -c "^    runner.prefetch_input(job)\|^        if not opts.offload_ar_model:  # the prompt encoded" $P  # 2: left on
for f in warm on1 off1 on2 off2; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" | tail -2; done
