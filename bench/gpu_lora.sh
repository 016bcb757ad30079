#!/usr/bin/env bash
# Issue 16, one device-tool call (NeMo wheel bundle carried: `bash ../shared/tools/nemo_gpu/make_bundle.sh .nemo_whl`,
# carry .nemo_whl): every LoRA run of bench/bench_lora.py, on nvidia-h200-x2 two at a time (GPUS=0,1, ~4 min) or on
# nvidia-h200 one after another (GPUS=0, ~7 min). Prints the markdown table; logs, results.json, table.md in $OUT.
#   bash bench/gpu_lora.sh ["extra bench_lora.py args", e.g. "--only 4b_24gb,4b_4800"]
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if ! python3 -c "import nemo" 2>/dev/null; then  # a caller (gpu_session_*.sh) may have installed NeMo already
  [ -f /tmp/site/.ok ] || { rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile \
    --target /tmp/site .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) && touch /tmp/site/.ok; } || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
python3 -c "import nemo.collections.llm" 2>/dev/null  # compile the bundle's modules once, not in every run
GPUS=${GPUS:-$(python3 -c "import torch; print(','.join(map(str, range(torch.cuda.device_count()))))")}
python3 bench/bench_lora.py --gpus "$GPUS" --out "$OUT/lora" ${1:-} 2>&1 | grep -v "^RESULT " | tail -40
# keep only what the table needs (checkpoints are large and were measured already)
find "$OUT/lora" -name checkpoints -type d -prune -exec rm -rf {} +
