#!/usr/bin/env bash
# FlashAttention-4 onto a warm H200 in two calls (its wheels are over the 64 MiB carry limit together), for the DiT's
# "fa4" attention (issue 13). /tmp/fa4site stays while the machine is warm; bench/gpu_site.sh then puts it on
# PYTHONPATH for every later call.
#   bash bench/gpu_fa4_install.sh a   # carry .fa4a: the CuTe DSL's CUDA 13 libraries (nvidia-cutlass-dsl-libs-cu13
#                                     # 4.8.1 less its aarch64 stubs, as a 61 MB tar.xz of the 92 MB wheel)
#   bash bench/gpu_fa4_install.sh b   # carry .fa4b: flash-attn-4 4.0.0b36 and its other dependencies; then the GPU
#                                     # tier's FA4 test and a cold and a warm import of flash_attn.cute
# Build the two folders on the CPU machine (cp312 manylinux_2_28 wheels, `pip download --no-deps`; .fa4a's tar.xz is
# the cu13 wheel unpacked, its aarch64 files removed, `tar cJf`); both are listed in .git/info/exclude.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
case ${1:-} in
  a)
    rm -rf /tmp/fa4site && mkdir -p /tmp/fa4site && tar xJf .fa4a/cu13.tar.xz -C /tmp/fa4site && touch /tmp/fa4site/.a_ok
    du -sh /tmp/fa4site ;;
  b)
    [ -f /tmp/fa4site/.a_ok ] || { echo "the machine was not kept: /tmp/fa4site is missing (run part a first)"; exit 3; }
    if [ ! -f /tmp/fa4site/.b_ok ]; then
      rm -rf /tmp/fa4b && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/fa4b .fa4b/*.whl \
        && cp -r /tmp/fa4b/. /tmp/fa4site/ && touch /tmp/fa4site/.b_ok || exit 4
    fi
    export PYTHONPATH=/tmp/fa4site:/tmp/fa4site/nvidia_cutlass_dsl/dsl_packages:$PWD PYTHONWARNINGS=ignore
    unset PYTHONDONTWRITEBYTECODE
    for run in cold warm; do
      python3 -c "import time; t = time.perf_counter(); import flash_attn.cute.interface; print('import flash_attn.cute ($run): %.1f s' % (time.perf_counter() - t))" 2>&1 | tail -1
    done
    timeout 300 python3 bench/gpu_tier_run.py fa4 2>&1 | grep -vE "Warning|warn\(" | tail -15 | tee "$OUT/fa4_test.log" ;;
  *) echo "usage: bash bench/gpu_fa4_install.sh a|b"; exit 2 ;;
esac
