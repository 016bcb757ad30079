#!/usr/bin/env bash
# Issue 11, one device-tool call on a 2-GPU H200 machine (nvidia-h200-x2) with the NeMo wheel bundle carried
# (`bash ../shared/tools/nemo_gpu/make_bundle.sh .nemo_whl`, carry .nemo_whl):
#   bash bench/gpu_train_matrix.sh MATRIX_FILE
# MATRIX_FILE has one run per line: `LABEL|GPUS|ENV|bench_recipe.py arguments` (GPUS "0", "1" or "0,1" for a
# torchrun over both); runs on one GPU go two at a time (GPU 0 and GPU 1), a two-GPU run alone. Every run prints a
# RESULT line (bench_recipe.py); the script ends with bench/train_table.py's markdown table of them, and the
# profiler tables of the runs given `--profile @OUT` are in $OUT.
set -uo pipefail
MATRIX=$1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# A warm machine keeps /tmp between calls: install the bundle once.
[ -f /tmp/site/.ok ] || { rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile \
  --target /tmp/site .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) && touch /tmp/site/.ok; } || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
LOG=$OUT/results.log; : > "$LOG"
python3 -c "import nemo.collections.llm" 2>/dev/null  # compile the bundle's modules once, not in every run
run_one() {  # label gpus env args...
  local label=$1 gpus=$2 envs=$3; shift 3
  local n; n=$(echo "$gpus" | tr ',' '\n' | wc -l)
  local launcher=(python3)
  [ "$n" -gt 1 ] && launcher=(python3 -m torch.distributed.run --nproc-per-node="$n")
  env $envs CUDA_VISIBLE_DEVICES="$gpus" timeout "${RUN_TIMEOUT:-300}" "${launcher[@]}" bench/bench_recipe.py \
    --label "$label" "$@" < /dev/null > "$OUT/run_$label.log" 2>&1
  grep -E "^RESULT|memory cap" "$OUT/run_$label.log" >> "$LOG" || { echo "FAILED $label"; grep -E "Error|error" "$OUT/run_$label.log" | tail -3; }
}
pending=""
while IFS='|' read -r label gpus envs args; do
  [ -z "$label" ] || [ "${label:0:1}" = "#" ] && continue
  args=${args//@OUT/$OUT}  # `--profile @OUT` writes the profiler table into $OUT
  if [ "$gpus" = "0,1" ]; then
    wait; run_one "$label" "$gpus" "$envs" $args
  elif [ -z "$pending" ]; then
    run_one "$label" 0 "$envs" $args & pending=1
  else
    run_one "$label" 1 "$envs" $args; wait; pending=""
  fi
done < "$MATRIX"
wait
python3 bench/train_table.py "$LOG" | tee "$OUT/table.md"
