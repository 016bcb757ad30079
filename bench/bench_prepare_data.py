"""End-to-end ``prepare-data`` throughput: MP4 decode + resize/crop + DV8x16x16 encode + shard write + merge.

Writes H.264 source videos (720p by default: a camera moving over the bundled photographs, see
``data/samples.py``), builds a random-weight tokenizer at the released sizes in the released file format, and runs
``prepare_dataset`` on 33x640x1024 clips (non-overlapping windows by default, so every clip decodes and resizes 33
new frames: the CPU side's worst case). Reports clips/s end to end (tokenizer load, planning and merge included) and
in steady state, plus each stage alone (read = decode + resize on the worker's device; encode = tokenizer only),
and peak GPU memory. Prints a markdown table and, with ``--json``, writes the numbers.

Usage::

    python bench/bench_prepare_data.py                          # one GPU, bf16, 33x640x1024 from 720p videos
    python bench/bench_prepare_data.py --workers 2              # two worker processes sharing the GPU(s)
    python bench/bench_prepare_data.py --window-stride 1        # cosmos-predict1's overlapping windows
    python bench/bench_prepare_data.py --tokenizer-dir checkpoints/Cosmos-Tokenize1-DV8x16x16-720p   # real weights
    python bench/bench_prepare_data.py --smoke                  # CPU, tiny tokenizer, 17x64x96 (checks the script)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from nemo_cosmos_ar.data import encode  # noqa: E402
from nemo_cosmos_ar.data import prepare as prep  # noqa: E402
from nemo_cosmos_ar.data import samples  # noqa: E402
from nemo_cosmos_ar.data.windows import WindowSpec  # noqa: E402


def write_videos(folder: Path, count: int, frames: int, height: int, width: int) -> None:
    sources = samples.find_photos()
    for i in range(count):
        if sources:
            photo = samples.load_photo(sources[i % len(sources)])
            motion = samples.MOTIONS[i % len(samples.MOTIONS)]
            clip = samples.render_camera_move(photo, motion, frames, height, width, seed=i)
        else:
            clip = samples.render_bouncing_balls(frames, height, width, seed=i)
        samples.write_mp4(str(folder / f"video_{i:03d}.mp4"), clip, fps=24.0)


def time_stages(cfg: prep.PrepareConfig, device: str, iters: int) -> dict:
    """Read-only and encode-only rates (each stage alone, on the worker's device)."""
    from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

    plan = prep.make_plan(cfg, prep.tokenizer_checksum(cfg.tokenizer))
    reader = encode.ClipReader(cfg.videos, plan, cfg.resolution, cfg.windows, device, encode.decode_threads())
    start, n = time.perf_counter(), 0
    batches = []
    for u in range(len(plan["units"])):
        ids, frames, _ = reader.load(u)
        n += len(ids)
        if len(batches) < 1 and frames is not None and len(ids) == cfg.batch_size:
            batches.append(frames)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    read_rate = n / (time.perf_counter() - start)
    dtype = None if cfg.backend == "jit" else cfg.torch_dtype()
    tok = load_tokenizer(cfg.tokenizer, cfg.backend, device=device, dtype=dtype, pixel_chunk_duration=None,
                         max_enc_batch_size=cfg.batch_size)  # fmt: skip
    frames = batches[0]
    rates = {}
    # prepare-data encodes with deterministic cuDNN kernels (a resumed run must be byte-identical); also time the
    # default kernels to show what that choice costs.
    for deterministic in (False, True):
        if device.startswith("cuda"):
            torch.backends.cudnn.deterministic = deterministic
        for _ in range(2):  # warm-up: the first calls pick and build kernels
            encode.encode_clips(tok, frames, cfg.latent_shape)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(iters):
            encode.encode_clips(tok, frames, cfg.latent_shape)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rates[deterministic] = iters * frames.shape[0] / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return {"read_clips_per_s": read_rate, "encode_clips_per_s": rates[True],
            "encode_default_kernels_clips_per_s": rates[False], "encode_peak_gib": peak}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny tokenizer on CPU, small clips (seconds)")
    p.add_argument("--tokenizer-dir", help="existing tokenizer folder (default: random weights, released sizes)")
    p.add_argument("--videos", type=int, default=12, help="source videos")
    p.add_argument("--video-frames", type=int, default=132, help="frames per source video")
    p.add_argument("--video-size", default="720x1280", help="source video HxW")
    p.add_argument("--resolution", default="640x1024", help="clip HxW")
    p.add_argument("--num-frames", type=int, default=33)
    p.add_argument("--window-stride", type=int, default=None, help="default: --num-frames (non-overlapping)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--backend", default="eager", choices=("eager", "jit"))
    p.add_argument("--encode-iters", type=int, default=3)
    p.add_argument("--workdir", help="where to write videos and datasets (default: a temporary folder)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.smoke:
        args.videos, args.video_frames, args.video_size, args.resolution = 3, 40, "72x108", "64x96"
        args.num_frames, args.batch_size, args.encode_iters = 17, 2, 3
        args.window_stride = args.window_stride or 8
    elif not torch.cuda.is_available():
        raise SystemExit("no GPU: run with --smoke on CPU")
    vh, vw = (int(x) for x in args.video_size.split("x"))
    h, w = (int(x) for x in args.resolution.split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        videos = root / "videos"
        videos.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        write_videos(videos, args.videos, args.video_frames, vh, vw)
        print(f"wrote {args.videos} videos of {args.video_frames}x{vh}x{vw} in {time.perf_counter() - t0:.1f} s")
        tokenizer = args.tokenizer_dir
        if tokenizer is None:
            from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer

            tokenizer = str(write_random_tokenizer(root / "tokenizer", "tiny" if args.smoke else "dv8x16x16",
                                                   autoencoder=False))  # fmt: skip
        cfg = prep.PrepareConfig(
            videos=str(videos), output=str(root / "dataset"), resolution=(h, w), tokenizer=tokenizer,
            windows=WindowSpec(args.num_frames, args.window_stride or args.num_frames, 1),
            batch_size=args.batch_size, backend=args.backend, device="cpu" if args.smoke else None, overwrite=True,
        )  # fmt: skip
        device = "cpu" if args.smoke else "cuda:0"
        stages = time_stages(cfg, device, args.encode_iters)  # also warms up kernels and the page cache
        stamps: list[tuple[float, int]] = []
        summary = prep.prepare_dataset(cfg, workers=args.workers, progress=False,
                                       on_progress=lambda n: stamps.append((time.perf_counter(), n)))  # fmt: skip
        # Steady state: from the first finished unit to the last (tokenizer load and planning excluded).
        first_t, first_n = stamps[0]
        steady = float("nan")
        if len(stamps) > 1:
            steady = (sum(n for _, n in stamps) - first_n) / max(stamps[-1][0] - first_t, 1e-9)
    clips = sum(summary.clips.values())
    result = {
        "device": torch.cuda.get_device_name(0) if not args.smoke else "cpu", "smoke": args.smoke,
        "clip": f"{args.num_frames}x{h}x{w}", "source": f"{args.videos}x{args.video_frames}x{vh}x{vw} H.264",
        "window_stride": cfg.windows.window_stride, "batch_size": args.batch_size, "workers": args.workers,
        "backend": args.backend, "dtype": str(cfg.torch_dtype()).replace("torch.", ""), "clips": clips,
        "seconds": summary.seconds, "end_to_end_clips_per_s": clips / summary.seconds,
        "pipeline_clips_per_s": steady, "phases": summary.phases, **stages,
    }  # fmt: skip
    print(summary.format())
    cols = ["clip", "workers", "batch", "end to end clips/s", "steady clips/s", "read only clips/s",
            "encode only clips/s", "encode, default kernels", "encode peak GiB"]  # fmt: skip
    row = [result["clip"], args.workers, args.batch_size, f"{result['end_to_end_clips_per_s']:.2f}", f"{steady:.2f}",
           f"{stages['read_clips_per_s']:.2f}", f"{stages['encode_clips_per_s']:.2f}",
           f"{stages['encode_default_kernels_clips_per_s']:.2f}", f"{stages['encode_peak_gib']:.1f}"]  # fmt: skip
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n| " + " | ".join(map(str, row)) + " |")
    print(json.dumps(result))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
