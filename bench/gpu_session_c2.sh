#!/usr/bin/env bash
# Device call 3 of the 2026-12-01 session, nvidia-h200-x2, carrying .gpu4. Issue 13:
#   GPU 1: the DiT kernel tests on the GPU (bf16 tolerance per intermediate), and how this image treats bytecode;
#   GPU 0: the random folders;
#   then both GPUs: the whole generate under torchrun on the 9-frame video prompt, the steady cost
#   of one more video (batch mode over 1 and 3 lines), bf16 and int8 AR weights.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c2; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
(CUDA_VISIBLE_DEVICES=1 taskset -c 16-31 timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_dd_fused.py > "$L/pytest.log" 2>&1;
 python3 -c "import sys, os, torch; print('dont_write_bytecode', sys.flags.dont_write_bytecode, os.environ.get('PYTHONDONTWRITEBYTECODE'), 'torch writable', os.access(os.path.dirname(torch.__file__), os.W_OK), 'pycache', os.path.isdir(os.path.join(os.path.dirname(torch.__file__), '__pycache__')))" > "$L/pyc.log" 2>&1) &
CUDA_VISIBLE_DEVICES=0 taskset -c 0-15 timeout 100 python3 -c "
import sys; sys.argv=['x','--work-dir','/tmp/e2e']; sys.path.insert(0,'bench')
from pathlib import Path; import bench_generate_e2e as b; b.setup(Path('/tmp/e2e'), False); b.input_video(Path('/tmp/e2e'), False)" > "$L/setup.log" 2>&1
wait
timeout 450 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --configs dd,dd-int8 --input video --nproc 2 --per-video-only > "$L/e2e2.log" 2>&1
for f in pytest pyc setup e2e2; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -14; done
cp $L/*.log "$OUT"/ 2>/dev/null
