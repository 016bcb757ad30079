#!/usr/bin/env bash
# Issue 20, one device-tool call on nvidia-h200-x8 (NeMo bundle carried: `bash ../shared/tools/nemo_gpu/make_bundle.sh
# .nemo_whl`, carry .nemo_whl): cosmos_ar_12b_tealrobot_tp8 as it ships (pure bf16, 10,600-token clips, random init,
# mock clips). Run A: TP=8 on 8 GPUs, 10 steps, a distributed checkpoint after step 8 (folder step=7). Run B: TP=4 on
# GPUs 0-3 resumes that checkpoint (weights, optimizer, data position; resharded at load) and runs steps 9-10. Prints
# ms/step, model TFLOP/s per GPU and peak memory per GPU of each run (bench/train_table.py) and the losses of steps
# 9-10 of both runs side by side. Expect ~6 min (two NeMo start-ups, a ~145 GB checkpoint written and read).
#   bash bench/gpu_12b_tp8.sh ["extra bench_recipe.py args"]
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
[ -f /tmp/site/.ok ] || { rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile \
  --target /tmp/site .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) && touch /tmp/site/.ok; } || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
EXTRA=${1:-}
F=cosmos_ar_12b_tealrobot_tp8
LOG=$OUT/results_12b_tp8.log; : > "$LOG"
rm -rf /tmp/b12x8 /tmp/b12x4
timeout 300 python3 -m torch.distributed.run --nproc-per-node=8 bench/bench_recipe.py --factory $F --tp 8 --steps 10 \
  --save-every 8 --out /tmp/b12x8 --label 12b_tp8 $EXTRA < /dev/null > "$OUT/run_12b_tp8.log" 2>&1
grep -E "^RESULT" "$OUT/run_12b_tp8.log" >> "$LOG" || grep -E "Error|error" "$OUT/run_12b_tp8.log" | tail -5
CK=/tmp/b12x8/posttraining/autoregressive_base/$F/checkpoints/step=7
du -sh "$CK"; df -h /tmp | tail -1
CUDA_VISIBLE_DEVICES=0,1,2,3 timeout 240 python3 -m torch.distributed.run --nproc-per-node=4 bench/bench_recipe.py \
  --factory $F --tp 4 --steps 10 --save-every 1000 --resume-from "$CK" --out /tmp/b12x4 --label 12b_tp4_resumed \
  $EXTRA < /dev/null > "$OUT/run_12b_tp4_resume.log" 2>&1
grep -E "^RESULT" "$OUT/run_12b_tp4_resume.log" >> "$LOG" || grep -E "Error|error" "$OUT/run_12b_tp4_resume.log" | tail -5
grep -h "Restored all states" "$OUT/run_12b_tp4_resume.log" | head -1
python3 bench/train_table.py "$LOG"
python3 - "$LOG" <<'PY'
import json, sys
rows = [json.loads(l.split("RESULT ", 1)[1]) for l in open(sys.argv[1]) if l.startswith("RESULT ")]
if len(rows) == 2:
    a, b = rows
    print("| step | TP=8 | TP=4 resumed | difference |\n|---|---|---|---|")
    for s in ("9", "10"):
        if s in a["losses"] and s in b["losses"]:
            print(f"| {s} | {a['losses'][s]:.6f} | {b['losses'][s]:.6f} | {abs(a['losses'][s] - b['losses'][s]):.1e} |")
PY
