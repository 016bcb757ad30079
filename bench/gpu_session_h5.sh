#!/usr/bin/env bash
# Device call 7 of the 2026-12-01 (fourth) session: SymmReducer's sums eagerly and in a CUDA graph, and its time per
# all-reduce against NCCL (bench/check_symm_reduce.py). Ran on one GPU (two ranks sharing it): symmetric memory
# refused at rendezvous ("allocations from overlapping devices"); the script now needs a GPU per rank (nvidia-h200-x2).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
export PYTHONPATH=$PWD:${PYTHONPATH:-}
timeout 200 python3 -m torch.distributed.run --standalone --nproc-per-node 2 bench/check_symm_reduce.py 2>&1 \
  | grep -vE "Warning|warn\(|pynvml" | tail -30 | tee "$OUT/symm.log"
