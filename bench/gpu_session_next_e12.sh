#!/usr/bin/env bash
# Prepared in the tenth session (2026-12-02) for a later one-H200 call (~3 min), carrying .gpu4. Issue 13: before
# building "the first guided step's unconditional pass beside the AR decode" (it needs no generated token), measure
# whether a DiT forward beside the real int8 AR decode is nearly free (bench_dit_beside_decode.py: "net" > ~0.3 s
# a video would justify building it).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source bench/gpu_site.sh .gpu4
timeout 400 python3 bench/bench_dit_beside_decode.py > "$OUT/dit_beside.log" 2>&1
grep -E "^\||^#" "$OUT/dit_beside.log"; tail -5 "$OUT/dit_beside.log"
