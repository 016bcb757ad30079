#!/usr/bin/env bash
# Prepared in the eleventh session (2026-12-02) for a later one-H200 call, no carry (~1-2 min). Issue 13: NVIDIA's
# ~62 s a video counts the guardrails, ours was measured without them; the face blur took 0.82 s for 33 frames in
# fp32 (BENCHMARKS.md, issue 14), slow for ~4.6 TFLOP of convolutions. bench_face_detector.py splits it into the
# forwards and the decode + NMS, and times the forward in fp32 (TF32 on/off), with cudnn.benchmark, channels-last
# and bf16 autocast, each against the exact fp32 outputs.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
unset PYTHONDONTWRITEBYTECODE
timeout 300 python3 bench/bench_face_detector.py 2>&1 | grep -vE "Warning|warn\(|pynvml" | tee "$OUT/face.log"
