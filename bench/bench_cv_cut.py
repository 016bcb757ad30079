"""The CV8x8x8 decode of a 33-frame video, whole chunk against only the latent frames the kept frames need, and the
MP4 write's x264 threading.

The diffusion decoder samples a chunk of 8 latent frames (57 pixel frames; the 5-frame token grid reflect-padded)
and keeps the first 33 frames. The CV8x8x8 decoder is causal in time, so frames 0-32 depend on latent frames 0-4
alone: decoding those 5 gives the same 33 frames for 5/8 of the work. This measures both (TorchScript traced at 8
frames, and the eager module) at the released sizes with random weights, the difference on the kept frames, and
then ``video_io.write_video``'s encoder with slice and frame threading on noise and on a smooth clip. Also the decode
with cuDNN's algorithm search on (``cudnn.benchmark``; its first call and warm calls).

    python bench/bench_cv_cut.py            # H200: released sizes, bf16
    python bench/bench_cv_cut.py --smoke    # CPU, tiny decoder (checks the script)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from nemo_cosmos_ar.diffusion_decoder.cv8x8x8 import load_cv_decoder  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.fixtures import write_random_cv_tokenizer  # noqa: E402


def timed(fn, reps: int, cuda: bool) -> tuple[float, torch.Tensor]:
    times, out = [], None
    for _ in range(reps):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def write_case(frames, thread_type: str, tmp: Path) -> float:
    from fractions import Fraction

    import av

    t = time.perf_counter()
    with av.open(str(tmp / "x.mp4"), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "18"}
        stream.codec_context.thread_type = thread_type
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and not args.smoke
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    preset, (h, w) = ("cv8x8x8", (80, 128)) if cuda else ("tiny", (6, 8))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_random_cv_tokenizer(tmp / "cv", preset, dtype=dtype, device=device, example_shape=(8, h, w))
        jit = load_cv_decoder(tmp / "cv", "jit", device)
        eager = load_cv_decoder(tmp / "cv", "eager", device)
        lat = torch.randn(1, 16, 8, h, w, generator=torch.Generator().manual_seed(0)).to(device, dtype)
        rows, outs = [], {}
        with torch.no_grad():
            for name, tok, k in (("jit", jit, 8), ("eager", eager, 8), ("eager", eager, 5), ("jit", jit, 5)):
                try:
                    s, out = timed(lambda tok=tok, k=k: tok.network(lat[:, :, :k]), args.reps, cuda)
                except Exception as err:  # noqa: BLE001 - a traced graph may hold its length
                    rows.append(f"| {name} | {k} | failed: {str(err).splitlines()[0][:100]} | |")
                    continue
                outs[name, k] = out[:, :, :33].float()
                rows.append(f"| {name} | {k} | {s * 1e3:.1f} | {tuple(out.shape)} |")
            # cuDNN's algorithm search (generate leaves torch's default, off): the first call pays the search, so
            # a gain would need a warm-up at the output's shapes in the load
            torch.backends.cudnn.benchmark = True
            for name, tok in (("jit", jit), ("eager", eager)):
                t = time.perf_counter()
                tok.network(lat)
                if cuda:
                    torch.cuda.synchronize()
                first = time.perf_counter() - t
                s, out = timed(lambda tok=tok: tok.network(lat), args.reps, cuda)
                d = (out[:, :, :33].float() - outs[name, 8]).abs().max().item() if (name, 8) in outs else float("nan")
                rows.append(
                    f"| {name}, cudnn.benchmark (first call {first * 1e3:.0f} ms) | 8 | {s * 1e3:.1f} | "
                    f"{tuple(out.shape)}, max abs diff to benchmark off {d:.3g} |"
                )
            torch.backends.cudnn.benchmark = False
        print(f"CV8x8x8 decoder ({preset}, {dtype}, {device}), one chunk, median of {args.reps}\n")
        print("| backend | latent frames | ms | output |\n|---|---:|---:|---|")
        print("\n".join(rows))
        for a, b in ((("eager", 8), ("eager", 5)), (("jit", 8), ("jit", 5)), (("jit", 8), ("eager", 8))):
            if a in outs and b in outs:
                d = (outs[a] - outs[b]).abs()
                q = ((outs[a].clamp(-1, 1) + 1) * 127.5).round() != ((outs[b].clamp(-1, 1) + 1) * 127.5).round()
                print(
                    f"{a} vs {b}, 33 kept frames: max |d| {d.max().item():.3g}, mean {d.mean().item():.3g}; "
                    f"uint8 values that differ {q.float().mean().item():.2e}"
                )
        from bench_encode_parts import sample_clips  # the same clips as the encode's own bench

        n, hh, ww = (33, 640, 1024) if cuda else (9, 64, 96)
        noise, smooth = sample_clips(n, hh, ww)
        print(f"\nMP4 write (libx264 crf 18), {n}x{hh}x{ww}\n\n| frames | SLICE s | FRAME s |\n|---|---:|---:|")
        for label, frames in (("noise", noise), ("smooth", smooth)):
            res = {tt: statistics.median(write_case(frames, tt, tmp) for _ in range(3)) for tt in ("SLICE", "FRAME")}
            print(f"| {label} | {res['SLICE']:.2f} | {res['FRAME']:.2f} |")


if __name__ == "__main__":
    main()
