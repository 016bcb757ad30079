#!/usr/bin/env bash
# Issue 19 item 7: the GPU test tier (tests/test_gpu.py: CUDA-graph decode vs eager, cuDNN SDPA vs math attention,
# bf16 tokenizer vs fp32, a 2-step run of the 4B TP=1 recipe), one device-tool call on one H200 (nvidia-h200) with the
# NeMo wheel bundle carried (`bash ../shared/tools/nemo_gpu/make_bundle.sh .nemo_whl`, carry .nemo_whl):
#   bash bench/gpu_test_tier.sh --gpu recipe   # only the tests whose names contain "recipe"
#   bash bench/gpu_test_tier.sh            # prints a markdown table (also in $OUT/gpu_tier.md) for BENCHMARKS.md
#   bash bench/gpu_test_tier.sh --smoke    # CPU rehearsal here, with the .venv stack (no bundle, smaller shapes)
# It runs the tier through bench/gpu_tier_run.py, which needs no pytest (the H200 image may lack it); with pytest
# and a CUDA build of the stack, `make test-gpu` runs the same file.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if [ "${1:-}" = "--smoke" ]; then
  PY=${PY:-.venv/bin/python}
  export COSMOS_GPU_TIER_SMOKE=1 PYTHONPATH=$PWD OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
else
  # A warm machine keeps /tmp between calls: install the bundle once (as bench/gpu_train_matrix.sh does).
  [ -f /tmp/site/.ok ] || { rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile \
    --target /tmp/site .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) && touch /tmp/site/.ok; } || exit 1
  PY=python3
  export PYTHONPATH=/tmp/site:$PWD CUDA_DEVICE_MAX_CONNECTIONS=1
fi
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
"$PY" bench/gpu_tier_run.py "${@:2}" > "$OUT/gpu_tier.log" 2>&1
rc=$?
sed -n '/^GPU test tier on/,$p' "$OUT/gpu_tier.log" | tee "$OUT/gpu_tier.md"
[ "$rc" -eq 0 ] || { echo "some tests failed (rc=$rc); log: $OUT/gpu_tier.log"; tail -40 "$OUT/gpu_tier.log"; }
exit "$rc"
