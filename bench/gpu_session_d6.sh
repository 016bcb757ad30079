#!/usr/bin/env bash
# Device call 4 of the 2026-12-01 (fifth) session, one H200, carrying .fa4a: unpack the CuTe DSL's cu13 libraries
# (nvidia-cutlass-dsl-libs-cu13 4.8.1 less its aarch64 stubs, as tar.xz: the wheel is 92 MB, over the carry limit)
# into /tmp/fa4site, kept on the warm machine for call e6, which carries the remaining wheels.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
rm -rf /tmp/fa4site && mkdir -p /tmp/fa4site && tar xJf .fa4a/cu13.tar.xz -C /tmp/fa4site && touch /tmp/fa4site/.a_ok
du -sh /tmp/fa4site; python3 -c "import cuda.bindings, sys; print('cuda.bindings', cuda.bindings.__version__)" 2>&1 | tail -1
python3 -c "import google.protobuf as p; print('protobuf', p.__version__)" 2>&1 | tail -1
