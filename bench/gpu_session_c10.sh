#!/usr/bin/env bash
# Runs at commits cabe19d (a10) and c91b0f8 (c10): the defer_load switch it flips was removed after call c10.
# Ninth session (2026-12-01), one H200, carrying .gpu4. Issue 13, one-machine A/B of how the diffusion decoder's
# weights load beside the AR model (int8 + FP8, the guide's 9-frame prompt, fresh processes):
#   SE = staged (runtime.copy_to_device: pinned buffers) and started early (in the decoder's constructor, as before a10)
#   PE = pageable (.to(cuda) from the memory map, the old load) and started early: the code before this session
#   SD = staged and deferred to the end of the prefill (call a10 measured PD: prefill -0.6 s but decode +2.7 s)
# Runs: warm (SE, discarded), SE1, PE1, SD1, SE2, PE2; then the GPU tier test of copy_to_device.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c10; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
P=nemo_cosmos_ar/inference/pipeline.py; C=nemo_cosmos_ar/diffusion_decoder/checkpoint.py
early() { sed -i 's/            defer_load=True,  # from the end/            defer_load=False,  # from the end/' $P; }
late() { sed -i 's/            defer_load=False,  # from the end/            defer_load=True,  # from the end/' $P; }
staged() { sed -i 's/    if False:  # through pinned/    if device.type == "cuda":  # through pinned/' $C; }
pageable() { sed -i 's/    if device.type == "cuda":  # through pinned/    if False:  # through pinned/' $C; }
run() { timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-int8-fp8 --input video \
  --timeout 90 > "$L/$1.log" 2>&1; cp $L/*.log "$OUT"/ 2>/dev/null; }
staged; early; run warm; run SE1; pageable; run PE1; staged; late; run SD1; early; run SE2; pageable; run PE2; staged
python3 -c "import sys; sys.path[:0] = ['tests', '.']; import test_gpu as t; t.test_copy_to_device_through_pinned_buffers_is_bit_exact()" > $L/tier.log 2>&1; echo "tier rc=$?" >> $L/tier.log
cp $L/*.log "$OUT"/
grep -E "MEASURED|rc=" $L/tier.log
for f in warm SE1 PE1 SD1 SE2 PE2; do echo "=== $f"; grep -E "^\| dd|^# dd" "$L/$f.log" | tail -2; done
