#!/usr/bin/env bash
# Device call 5 of the 2026-12-01 (fifth) session, one H200, carrying .fa4b (flash-attn-4 4.0.0b36 and the rest of
# its dependencies) onto the machine call d6 left warm: install, then bench_fa4.py (FA4's Hopper forward against
# torch SDPA's cuDNN at the DiT's attention shape).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
[ -f /tmp/fa4site/.a_ok ] || { echo "the machine was not kept: /tmp/fa4site is missing (run d6 first)"; exit 3; }
if [ ! -f /tmp/fa4site/.b_ok ]; then
  rm -rf /tmp/fa4b && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/fa4b .fa4b/*.whl \
    && cp -r /tmp/fa4b/. /tmp/fa4site/ && touch /tmp/fa4site/.b_ok || exit 4
fi
# --target installs skip .pth files: the DSL wheel's adds nvidia_cutlass_dsl/dsl_packages (the `cutlass` package)
export PYTHONPATH=/tmp/fa4site:/tmp/fa4site/nvidia_cutlass_dsl/dsl_packages:$PWD:$PWD/bench PYTHONWARNINGS=ignore
timeout 400 python3 bench/bench_fa4.py 2>&1 | grep -vE "Warning|warn\(|pynvml" | tail -30 | tee "$OUT/fa4.log"
