#!/usr/bin/env bash
# Issue 11 item 4, one device-tool call on nvidia-h200-x2 (NeMo bundle carried): the 12B at TP=2 on two H200s in
# pure bf16 (bf16-mixed needs ~115 GB per GPU for weights, masters, Adam states and gradients alone), 10,600-token
# clips (cosmos_ar_12b_tealrobot_tp8's grid), random init, mock clips. Run A: 10 steps, a distributed checkpoint
# after step 8. Run B: resumes that checkpoint (weights, optimizer, data position) and runs steps 9-10 again.
#   bash bench/gpu_12b_tp2.sh ["extra bench_recipe.py args"]
# TP_RUN / TP_RESUME (default 2 / 2) set the tensor parallelism of run A (on TP_RUN GPUs) and of the resumed run B
# (on the first TP_RESUME GPUs): bench/gpu_12b_tp8.sh is TP_RUN=8 TP_RESUME=4 (issue 20).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
[ -f /tmp/site/.ok ] || { rm -rf /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile \
  --target /tmp/site .nemo_whl/*.whl $(python3 .nemo_whl/pick_opt.py) && touch /tmp/site/.ok; } || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore CUDA_DEVICE_MAX_CONNECTIONS=1
EXTRA=${1:-}
F=cosmos_ar_12b_tealrobot_tp8
A=${TP_RUN:-2} B=${TP_RESUME:-2}
LOG=$OUT/results_12b.log; : > "$LOG"
rm -rf /tmp/b12 /tmp/b12r
timeout 300 python3 -m torch.distributed.run --nproc-per-node=$A bench/bench_recipe.py --factory $F --tp $A --steps 10 \
  --save-every 8 --out /tmp/b12 --label 12b_tp$A $EXTRA < /dev/null > "$OUT/run_12b.log" 2>&1
grep -E "^RESULT" "$OUT/run_12b.log" >> "$LOG" || grep -E "Error|error" "$OUT/run_12b.log" | tail -5
CK=/tmp/b12/posttraining/autoregressive_base/$F/checkpoints/step=7
du -sh "$CK"; df -h /tmp | tail -1
CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((B - 1))) timeout 240 python3 -m torch.distributed.run --nproc-per-node=$B \
  bench/bench_recipe.py --factory $F --tp $B --steps 10 --save-every 1000 --resume-from "$CK" --out /tmp/b12r \
  --label 12b_tp${B}_resumed $EXTRA < /dev/null > "$OUT/run_12b_resume.log" 2>&1
grep -E "^RESULT" "$OUT/run_12b_resume.log" >> "$LOG" || grep -E "Error|error" "$OUT/run_12b_resume.log" | tail -5
grep -h "Restored all states" "$OUT/run_12b_resume.log" | head -1
python3 bench/train_table.py "$LOG"
python3 - "$LOG" <<'PY'
import json, sys
rows = [json.loads(l.split("RESULT ", 1)[1]) for l in open(sys.argv[1]) if l.startswith("RESULT ")]
if len(rows) == 2:
    a, b = rows
    print("| step | run A | resumed | difference |\n|---|---|---|---|")
    for s in ("9", "10"):
        if s in a["losses"] and s in b["losses"]:
            print(f"| {s} | {a['losses'][s]:.6f} | {b['losses'][s]:.6f} | {abs(a['losses'][s] - b['losses'][s]):.1e} |")
PY
