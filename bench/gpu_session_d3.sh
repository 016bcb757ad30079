#!/usr/bin/env bash
# Device call 1 of the 2026-12-01 (second) session, one H200 (nvidia-h200), carrying .gpu4. Issue 13:
#   1. how this image treats bytecode: import times of torch + megatron.core + torch.distributed.checkpoint in fresh
#      processes, twice with the image's defaults, then twice with PYTHONPYCACHEPREFIX (a writable .pyc cache);
#   2. the DiT kernel tests on the GPU (fused.py and fp8.py), while the e2e random folders are written (other cores);
#   3. bench_dd_kernels.py --fp8: the guidance batch with the unconditional cross-attention skipped, FP8 GEMMs;
#   4. the whole generate on the 9-frame video prompt with FP8 DiT GEMMs (bf16 and int8 AR weights), with the
#      .pyc cache of step 1.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/d3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
IMP='import time; t = time.perf_counter(); import torch, megatron.core, torch.distributed.checkpoint; print(f"import {time.perf_counter() - t:.2f} s")'
{ python3 -c "import sys, os, torch; d = os.path.dirname(torch.__file__); print('torch dir writable', os.access(d, os.W_OK), 'has __pycache__', os.path.isdir(os.path.join(d, '__pycache__')), 'dont_write_bytecode', sys.flags.dont_write_bytecode)"
  for i in 1 2; do echo -n "image defaults, run $i: "; python3 -c "$IMP"; done
  for i in 1 2; do echo -n "PYTHONPYCACHEPREFIX, run $i: "; PYTHONPYCACHEPREFIX=/tmp/pyc python3 -c "$IMP"; done; } > "$L/pyc.log" 2>&1
export PYTHONPYCACHEPREFIX=/tmp/pyc
(taskset -c 8-15 timeout 150 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1) &
taskset -c 0-7 timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fp8.py tests/test_dd_fused.py > "$L/pytest.log" 2>&1
wait
timeout 200 python3 bench/bench_dd_kernels.py --fp8 --steps 3 > "$L/kernels.log" 2>&1
timeout 200 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd-fp8,dd-int8-fp8 --input video > "$L/e2e1.log" 2>&1
for f in pyc pytest setup kernels e2e1; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -40; done
cp $L/*.log "$OUT"/ 2>/dev/null
