#!/usr/bin/env bash
# Prepared for a later session with nvidia-h200-x2 (not lent in the fourth to seventh sessions; it replaces the fourth
# session's gpu_session_e5.sh, which never ran), carrying .gpu4.
# Issue 13, the TP=2 AR decode and the whole generate on two GPUs:
#   the 4B's int8 batch-1 decode at TP=2 with NCCL all-reduces (+int8, the Triton int8 kernel), the same with the
#   CUDA int8 kernel (+int8-cuda, the generate default since the sixth session), torch's symmetric-memory one-shot
#   all-reduce (+symm; its tokens must equal +int8's) and that with PDL at TP=2 (+symm-pdl); then the whole generate
#   on two GPUs with int8 + FP8, --decode-reduce symm (twice: the first run fills the caches), then nccl (auto).
# Since the eleventh session the DiT uses FlashAttention-4 where it is installed: run `bash bench/gpu_fa4_install.sh a`
# (carry .fa4a) and `... b` (carry .fa4b) on the same warm machine first, or the figures are SDPA's.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/x2n; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
# first the reducer alone: its sums (eager, in a CUDA graph) and its time per all-reduce against NCCL
timeout 60 python3 -m torch.distributed.run --standalone --nproc-per-node 2 bench/check_symm_reduce.py 2>&1 \
  | grep -vE "Warning|warn\(|pynvml" | tail -8 | tee "$L/symm.log"
timeout 240 python3 -m torch.distributed.run --standalone --nproc-per-node 2 bench/bench_generate.py --tp 2 --batch 1 \
  --configs +int8,+int8-cuda,+symm,+symm-pdl --check 0 > "$L/tp2.log" 2>&1
cp $L/*.log "$OUT"/ 2>/dev/null
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/tp2.log" | tail -14
timeout 100 python3 bench/bench_generate_e2e.py --work-dir /tmp/e2e --setup-only > "$L/setup.log" 2>&1
for i in 1 2; do
  timeout 110 python3 bench/bench_generate_e2e.py --timeout 95 --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --nproc 2 \
    --generate-args "--decode-reduce symm" > "$L/e2e$i.log" 2>&1
  cp $L/*.log "$OUT"/ 2>/dev/null
done
timeout 100 python3 bench/bench_generate_e2e.py --timeout 95 --work-dir /tmp/e2e --configs dd-int8-fp8 --input video --nproc 2 \
  > "$L/e2e3.log" 2>&1
for f in setup e2e1 e2e2 e2e3; do echo "=== $f"; grep -vE "Warning|warn\(|^\s*$|import pynvml" "$L/$f.log" | tail -5; done
cp $L/*.log "$OUT"/ 2>/dev/null
