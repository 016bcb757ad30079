#!/usr/bin/env bash
# Device call 3 of the 2026-12-01 (fifth) session, one H200. Issue 13: the matrix-vector kernel with the next weight
# tile's load issued before this tile's arithmetic (PREFETCH), int8 and bf16 weights, against the current kernel.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/c6; rm -rf $L; mkdir -p "$OUT" $L
export PYTHONPATH=$PWD PYTHONWARNINGS=ignore
unset PYTHONDONTWRITEBYTECODE
F="Warning|warn\(|pynvml"
timeout 270 python3 bench/bench_gemv.py --weights int8 --quick-sweep --prefetch --shapes qkv,proj,fc1,fc2,output 2>&1 | grep -vE "$F" | tee "$L/int8.log"
timeout 250 python3 bench/bench_gemv.py --weights bf16 --quick-sweep --prefetch --shapes qkv,proj,fc1,fc2,output 2>&1 | grep -vE "$F" | tee "$L/bf16.log"
cp $L/*.log "$OUT"/
