#!/usr/bin/env bash
# Prepared in the twenty-seventh session, run in the twenty-eighth (call a64; BENCHMARKS.md): issue 13, the DiT's
# self-attention on FlashAttention-4 at other tile shapes (bench/bench_fa4_tiles.py). One H200, after the FA4 install:
#   bash bench/gpu_fa4_install.sh a   # carry .fa4a
#   bash bench/gpu_fa4_install.sh b   # carry .fa4b
#   bash bench/gpu_session_next_fa4tiles.sh   # no carry needed (~2-4 min: 9 choices x 2 batch sizes to compile)
# Prediction: FA4's sm90 default for head dim 128 (128 x 128) against FA3's 128 x 176 non-causal choice: up to
# +5-8% attention throughput, i.e. -0.4 to -0.7 s of the DiT's ~8.5 s of attention a video if one choice wins. If
# one does, attention.py would pass it through FA4's _flash_attn_fwd (the public flash_attn_func takes no tiles)
# with a fallback, and the whole generate is measured again (bench/gpu_session_a52.sh e2e).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
[ -f /tmp/fa4site/.b_ok ] || { echo "FA4 is not installed on this machine: run bench/gpu_fa4_install.sh a, then b"; exit 3; }
export PYTHONPATH=/tmp/fa4site:/tmp/fa4site/nvidia_cutlass_dsl/dsl_packages:$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
timeout 540 python3 bench/bench_fa4_tiles.py 2>&1 | grep -vE "Warning|warn\(|pynvml" | tee "$OUT/fa4_tiles.log" | tail -40
