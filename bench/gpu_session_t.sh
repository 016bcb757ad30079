#!/usr/bin/env bash
# Device call 3 of the 2026-11-30 night session, one H200 (nvidia-h200, 16 cores; the two-GPU kind was not lent),
# carrying .gpu4. Issues 12 and 15, one after the other:
#   1. the Triton decode attention's launch choices swept at 6,144 / 9,216 / 12,800 filled slots (best -> a file);
#   2. 4B batch 1, 5,120 -> 7,680 with the best attention choice: +gemv, +pdl, +pdl-write, twice, with graph profiles;
#   3. prepare-data with frame slots, 480 clips, with the eager row (byte identity of the slots path on the GPU).
set -uo pipefail
OUT=${OUT:-/tmp/out}; L=/tmp/t3; rm -rf $L; mkdir -p "$OUT" $L
source bench/gpu_site.sh .gpu4
nproc
timeout 150 python3 bench/bench_decode_attention.py --batch 1 --lengths 6144,9216,12800 --modes triton \
  --sweep --best-out $L/attn_best > "$L/attn.log" 2>&1
[ -s $L/attn_best ] || echo "64,2,4,2" > $L/attn_best; cat $L/attn_best; echo
timeout 270 python3 bench/bench_generate.py --batch 1 --attention-config $L/attn_best \
  --configs +gemv,+pdl,+pdl-write,+gemv,+pdl,+pdl-write --graph-profile 100 > "$L/gen1.log" 2>&1
mkdir -p /tmp/prep/videos
[ -f /tmp/prep/videos/video_011.mp4 ] || python3 -c "import sys; sys.path.insert(0, 'bench'); import bench_prepare_data as b; \
from pathlib import Path; b.write_videos(Path('/tmp/prep/videos'), 12, 132, 720, 1280)" > "$L/write.log" 2>&1
for i in $(seq 12 119); do cp --update=none /tmp/prep/videos/video_$(printf %03d $((i % 12))).mp4 /tmp/prep/videos/video_$(printf %03d $i).mp4; done
timeout 150 python3 bench/bench_prepare_data.py --workdir /tmp/prep --videos 120 --decode-workers 12 \
  --budget-s 120 --encode-iters 1 --read-clips 8 --rows "procs,procs+fast" > "$L/prep480.log" 2>&1
grep -A80 "Triton kernel choices" $L/attn.log | grep -E "^\| 1 \| (6144|9216|12800) " | sort -t'|' -k3,3n -k9,9n | awk -F'|' '{c[$3]++; if (c[$3] <= 5) print}'
grep -E "^\| 1 \||^batch|rror|Traceback" $L/attn.log | grep -v "| 64 | 2 |" | head -4; grep -E "^\| 1 \| [0-9]+ \| 64 \| 2 \| 4 \| 2 " $L/attn.log
for f in gen1 prep480; do echo "=== $f"; grep -E "^\||^[A-Za-z0-9#].*(grid|GPU|H200|profile|load|clips|slots|choices)|rror|Traceback" "$L/$f.log" | grep -v "^| void\|^| triton_\|^| kernel\|^|---" | tail -60; done
cp $L/*.log $L/attn_best "$OUT"/ 2>/dev/null
