"""The MP4 write's x264 encode, whole against cut into runs encoded side by side (``nemo_cosmos_ar/x264.py``).

generate waits for the MP4 encode last (it runs beside the guardrails). At the output's size, 33 x 640 x 1024 at
crf 18, this times ``video_io.encode_mp4`` with 1-4 parts on a noise clip (what random weights make; the hardest case)
and a smooth moving pattern (closer to a real video), interleaved rounds, and prints the median seconds, the file size
and the PSNR of the decoded frames against the source.

    python bench/bench_encode_parts.py            # the output's size
    python bench/bench_encode_parts.py --smoke    # 9 x 64 x 96 (checks the script)
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_ar import video_io  # noqa: E402


def sample_clips(n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Two uint8 ``[n, h, w, 3]`` clips: uniform noise (seed 0; what random weights make) and a smooth pattern that
    moves by a few pixels a frame (closer to a real video)."""
    noise = np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack(
        [np.stack([(xx + 8 * t) % 256, (yy + 4 * t) % 256, (xx + yy) // 8 % 256], -1) for t in range(n)]
    ).astype(np.uint8)
    return noise, smooth


def psnr(data: bytes, source: np.ndarray) -> float:
    import av

    with av.open(io.BytesIO(data)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    if frames.shape != source.shape:
        raise AssertionError(f"decoded {frames.shape}, wrote {source.shape}")
    mse = ((frames.astype(np.float64) - source) ** 2).mean()
    return 10 * np.log10(255**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", default="1,2,3,4")
    args = ap.parse_args()
    n, h, w = (9, 64, 96) if args.smoke else (33, 640, 1024)
    noise, smooth = sample_clips(n, h, w)
    parts = [int(p) for p in args.parts.split(",")]
    print(f"MP4 encode (libx264 crf 18) of {n} x {h} x {w}, median of {args.rounds} interleaved rounds\n")
    print("| clip | parts | s | MB | PSNR dB |\n|---|---:|---:|---:|---:|")
    for label, clip in (("noise", noise), ("smooth", smooth)):
        times: dict[int, list[float]] = {p: [] for p in parts}
        out: dict[int, bytes] = {}
        for _ in range(args.rounds):
            for p in parts:
                t = time.perf_counter()
                out[p] = video_io.encode_mp4(torch.from_numpy(clip), layout="THWC", parts=p)
                times[p].append(time.perf_counter() - t)
        for p in parts:
            med = statistics.median(times[p])
            print(f"| {label} | {p} | {med:.3f} | {len(out[p]) / 1e6:.2f} | {psnr(out[p], clip):.2f} |", flush=True)


if __name__ == "__main__":
    main()
