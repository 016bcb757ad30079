#!/usr/bin/env bash
# Twentieth session, one H200 carrying .gpu4 (~6 min). Issue 13: `cosmos-ar check-precision` at the released shapes
# (random weights in the released layouts, bench_generate_e2e.py's folders): the 4B teacher-forced before and after
# int8, and the 7B decoder bf16 (seeds 0 and 1) against FP8 (seed 0), on a 40-frame 720x1280 clip of smooth motion.
# Predictions: AR part ~40 s with the load, logits rel. L2 ~1% (as the per-product error on random weights); the
# decoder part ~90 s (three 15-step decodes ~20 + 20 + 15 s, two 14 GB loads), peak ~20 GiB.
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/logs; mkdir -p "$OUT" "$L"
source bench/gpu_site.sh .gpu4
t=$SECONDS; e2e_setup; echo "setup $((SECONDS - t)) s rc=$?"; tail -3 "$L/setup.log"
python3 - <<'PY'
import numpy as np, torch
from nemo_cosmos_ar import video_io
h, w = 720, 1280
yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
frames = []
for i in range(40):  # a smooth pattern drifting and a bright disc crossing: content a tokenizer can represent
    r = 127 + 100 * np.sin((xx + 6 * i) / 60) * np.cos(yy / 80)
    g = 127 + 100 * np.sin((yy - 4 * i) / 50)
    b = 127 + 100 * np.cos((xx + yy + 10 * i) / 90)
    disc = ((xx - 200 - 25 * i) ** 2 + (yy - 360) ** 2) < 90**2
    f = np.stack([r, g, b], -1)
    f[disc] = 250
    frames.append(f.clip(0, 255).astype(np.uint8))
video_io.write_video("/tmp/e2e/clip40.mp4", torch.from_numpy(np.stack(frames)), fps=25.0, layout="THWC")
PY
t=$SECONDS
timeout 420 python3 -m nemo_cosmos_ar.cli check-precision --input /tmp/e2e/clip40.mp4 \
  --checkpoint-dir /tmp/e2e/checkpoints --report "$OUT/check.json" > "$OUT/check.log" 2>&1
echo "check-precision rc=$? $((SECONDS - t)) s"
grep -vE "Warning|warn\(|^\s*$|import pynvml" "$OUT/check.log" | tail -40 | cut -c1-200
