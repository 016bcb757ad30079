#!/usr/bin/env bash
# FlashAttention-4 onto a warm H200 in two calls (its wheels are over the 64 MiB carry limit together), for the DiT's
# "fa4" attention (issue 13). /tmp/fa4site stays while the machine is warm; bench/gpu_site.sh then puts it on
# PYTHONPATH for every later call.
#   bash bench/gpu_fa4_install.sh a   # carry .fa4a: the CuTe DSL's CUDA 13 libraries (nvidia-cutlass-dsl-libs-cu13
#                                     # 4.8.1 less its aarch64 stubs, as a 63.5 MB tar.xz of the 92 MB wheel)
#   bash bench/gpu_fa4_install.sh b   # carry .fa4b: flash-attn-4 4.0.0b36 and its other dependencies; then the GPU
#                                     # tier's FA4 test and a cold and a warm import of flash_attn.cute
# Build the two folders on the CPU machine (both listed in .git/info/exclude; a fresh checkout has neither):
#   P="--no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 --platform any"
#   pip download $P -d .fa4b flash-attn-4==4.0.0b36 nvidia-cutlass-dsl==4.8.1 nvidia-cutlass-dsl-libs-base==4.8.1 \
#     nvidia-cutlass-dsl-libs-core==4.8.1 'apache-tvm-ffi<0.2,>=0.1.11' torch-c-dlpack-ext quack-kernels einops \
#     'cuda-bindings>=13,<14' cuda-pathfinder                                   # 18 MB
#   (libs-core holds the DSL's Python package, `cutlass.cute`: since 4.6 libs-base has only the MLIR bindings, and
#   without libs-core the import fails with "No module named 'cutlass.cute'".)
#   pip download $P -d /tmp/w nvidia-cutlass-dsl-libs-cu13==4.8.1; unzip it into /tmp/u, delete its stubs/aarch64*
#   folders, then `tar cf - -C /tmp/u . | xz -T2 -9e > .fa4a/cu13.tar.xz`       # 63.5 MB (-6 gives 66.1 MB: with the
#   tracked files the call's upload passes the 64 MiB limit)
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
