"""Side-by-side x264 encoders for ``video_io.encode_mp4``: a clip cut into consecutive runs of frames, each encoded
by its own libx264 instance on a thread, the packets muxed into one H.264 stream.

Why: on the H200 host (16 cores) one x264 instance keeps only ~6 cores busy on a 33-frame 640x1024 clip (its
lookahead and the reference dependencies between frames serialise much of the work), and the MP4 encode is the last
thing generate waits for. Instances side by side share nothing, so a hard-to-encode clip finishes sooner. Each run
starts with a key frame (IDR); the crf, and so the quality, is the same, and the file grows by the extra key frames
only (BENCHMARKS.md, issue 13, twenty-eighth session).

One stream needs one header: every instance is set up as the container's (its global-header flag included), and the
runs are used only when their SPS/PPS equal the container encoder's, else the clip is encoded whole. Each instance
counts frames from 0; one tick of the stream's time base (1 / rate) is one frame, so a run's packets are shifted by
its first frame.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

PART_FRAMES = 16  # frames per run from which a clip is cut (a 33-frame clip: two runs, 17 + 16)
MAX_PARTS = 2


def encode_parts(num_frames: int, parts: int | None = None) -> list[int]:
    """First frame of each run: ``parts`` (None: one per ``PART_FRAMES`` frames, at most ``MAX_PARTS``) near-equal
    runs of consecutive frames, the longer ones first."""
    n = max(1, min(MAX_PARTS, num_frames // PART_FRAMES)) if parts is None else max(1, min(parts, num_frames))
    return [i * (num_frames // n) + min(i, num_frames % n) for i in range(n)]


def x264_like(main, rate: Fraction, options: dict[str, str]):
    """An open libx264 encoder set up as ``main`` (the container's stream's, its global header flag included)."""
    import av

    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = main.width, main.height, main.pix_fmt
    ctx.time_base, ctx.framerate, ctx.flags = 1 / rate, rate, main.flags
    ctx.options = dict(options)  # (PyAV empties an encoder's options dict when it opens)
    ctx.open()
    return ctx


def encode_side_by_side(
    main, frames: np.ndarray, starts: list[int], rate: Fraction, options: dict[str, str]
) -> list[list] | None:
    """The packets of each run of ``frames`` from ``starts`` on: the first through ``main`` (the container's
    stream's encoder with ``options`` set, opened here), the others through encoders set up alike, all on threads
    at once (PyAV releases the GIL inside the encoder). None, with nothing encoded, where a twin's stream header
    (SPS/PPS) differs from ``main``'s: the caller then encodes the clip whole through ``main``."""
    from concurrent.futures import ThreadPoolExecutor

    main.time_base, main.framerate = 1 / rate, rate
    main.open()
    twins = [x264_like(main, rate, options) for _ in starts[1:]]
    header = bytes(main.extradata or b"")
    if not header or any(bytes(t.extradata or b"") != header for t in twins):
        return None
    ends = starts[1:] + [len(frames)]
    with ThreadPoolExecutor(len(starts), thread_name_prefix="cosmos-ar-x264") as pool:
        runs = [pool.submit(encode_run, c, frames[a:b]) for c, a, b in zip([main] + twins, starts, ends)]
        return [r.result() for r in runs]


def encode_run(ctx, frames: np.ndarray) -> list:
    """Every packet of ``frames`` through the open-on-first-use encoder ``ctx``, flushed."""
    import av

    out = []
    for frame in frames:
        out.extend(ctx.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    out.extend(ctx.encode(None))
    return out
