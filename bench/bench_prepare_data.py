"""End-to-end ``prepare-data`` throughput: MP4 decode + resize/crop + DV8x16x16 encode + shard write + merge.

Writes H.264 source videos (720p by default: a camera moving over the bundled photographs, see
``data/samples.py``), builds a random-weight tokenizer at the released sizes in the released file format, and runs
``prepare_dataset`` on 33x640x1024 clips (non-overlapping windows by default, so every clip decodes and resizes 33
new frames: the CPU side's worst case) once per row of a matrix:

* ``sequential``: no prefetch (decode, resize, encode, write one after the other), eager backend;
* ``thread``: one decoding thread 2 units ahead (``--prefetch 2``), eager;
* ``procs``: ``--decode-workers`` decode processes, each 2 units ahead, eager;
* ``procs+fast``: the same with the ``fast`` tokenizer backend (torch.compile; compiled on the first unit);
* ``2 workers+fast``: two worker processes sharing the GPU, each with half the decode processes;
* ``procs no-slots``, ``procs+fast no-slots``: ``procs`` / ``procs+fast`` with ``COSMOS_AR_FRAME_SLOTS=0``: every
  unit's frames in a new shared-memory segment, staged through pinned memory (the path before frame slots, for A/B).

For every row: clips/s end to end (tokenizer load, compile, planning and merge included) and in steady state (first
finished unit to the last), where the time went (busy seconds per stage, summed over workers, how long the
encoder waited for frames, tokenizer load and first-call compile), and whether the dataset is byte-identical to the
first eager row's, whatever the row order (eager rows must be; the fast rows give the % of tokens equal instead).
Before the matrix, each stage alone: read only (decode + resize, one thread) and encode only (eager and fast, batch
of ``--batch-size``); the fast backend's warm-up there is the first-ever run's cold compile (on an empty inductor
cache it fills). Every row then starts from torch.compile's state of a fresh process (``_fresh_compile_state``), so a
fast row's compile time is what a second ``prepare-data`` run pays: a compile served from inductor's on-disk cache.
Prints markdown tables; ``--json`` writes the numbers.

Usage::

    python bench/bench_prepare_data.py                          # one GPU, bf16, 33x640x1024 from 720p videos
    python bench/bench_prepare_data.py --rows sequential,procs  # some rows only
    python bench/bench_prepare_data.py --window-stride 8        # overlapping windows
    python bench/bench_prepare_data.py --tokenizer-dir checkpoints/Cosmos-Tokenize1-DV8x16x16-720p   # real weights
    python bench/bench_prepare_data.py --smoke                  # CPU, tiny tokenizer, 17x64x96 (checks the script)

The default source is 12 videos of 132 frames (4 disjoint clips each, 48 clips): start-up dominates such a run. For
steady-state figures use more or longer videos; clips = videos x (frames // 33) with disjoint windows::

    python bench/bench_prepare_data.py --videos 120 --rows procs,procs+fast --decode-workers 16   # 480 clips
    python bench/bench_prepare_data.py --videos 12 --video-frames 1320 --rows procs,procs+fast --decode-workers 16
    python bench/bench_prepare_data.py --videos 24 --video-frames 1320 --rows procs,procs+fast --decode-workers 16

(480 and 960 clips from long videos. A video is decoded by one process, so with 12 videos at most 12 of the 16
decode processes get work.)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from nemo_cosmos_ar.data import encode, samples  # noqa: E402
from nemo_cosmos_ar.data import prepare as prep  # noqa: E402
from nemo_cosmos_ar.data.frames import ClipReader, unit_clips  # noqa: E402
from nemo_cosmos_ar.data.windows import WindowSpec  # noqa: E402

# name -> (backend, prefetch, decode processes per GPU worker as a fraction of --decode-workers, local workers,
# frame slots: None = the default, 0 = none)
ROWS = {
    "sequential": ("eager", 0, 0.0, 1, None),
    "thread": ("eager", 2, 0.0, 1, None),
    "procs": ("eager", 2, 1.0, 1, None),
    "procs+fast": ("fast", 2, 1.0, 1, None),
    "2 workers+fast": ("fast", 2, 0.5, 2, None),
    "procs no-slots": ("eager", 2, 1.0, 1, 0),
    "procs+fast no-slots": ("fast", 2, 1.0, 1, 0),
}
DEFAULT_ROWS = list(ROWS)[:5]


def write_videos(folder: Path, count: int, frames: int, height: int, width: int) -> None:
    """Write the source videos; ones already in ``folder`` are kept (the GPU image has no PyAV to write them, so
    they can be made elsewhere with this function and copied in)."""
    sources = samples.find_photos()
    for i in range(count):
        if (folder / f"video_{i:03d}.mp4").exists():
            continue
        if sources:
            photo = samples.load_photo(sources[i % len(sources)])
            motion = samples.MOTIONS[i % len(samples.MOTIONS)]
            clip = samples.render_camera_move(photo, motion, frames, height, width, seed=i)
        else:
            clip = samples.render_bouncing_balls(frames, height, width, seed=i)
        samples.write_mp4(str(folder / f"video_{i:03d}.mp4"), clip, fps=24.0)


def time_stages(cfg: prep.PrepareConfig, device: str, iters: int, backends: list[str], read_clips: int) -> dict:
    """Read-only and encode-only rates (each stage alone, on the worker's device); reading stops after the unit that
    reaches ``read_clips`` clips (one process reads at ~3.7 clips/s: a whole 480-clip set would take minutes)."""
    from nemo_cosmos_ar.tokenizer.backends import load_tokenizer
    from nemo_cosmos_ar.tokenizer.fast import FastOptions

    plan = prep.make_plan(cfg, prep.tokenizer_checksum(cfg.tokenizer))
    reader = ClipReader(cfg.videos, plan, cfg.windows, encode.decode_threads())
    start, n, batch = time.perf_counter(), 0, None
    for u in range(len(plan["units"])):
        clips = unit_clips(reader.load(u), cfg.resolution, device)
        n += 0 if clips is None else clips.shape[0]
        if batch is None and clips is not None and clips.shape[0] == cfg.batch_size:
            batch = clips
        if n >= read_clips and batch is not None:
            break
    reader.close()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    out = {"read_clips_per_s": n / (time.perf_counter() - start)}
    if device.startswith("cuda"):  # as prepare-data encodes: deterministic kernels, no autotuning
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    for backend in backends:
        tok = load_tokenizer(
            cfg.tokenizer,
            backend,
            device=device,
            dtype=cfg.torch_dtype(),
            pixel_chunk_duration=None,
            max_enc_batch_size=cfg.batch_size,
            fast_options=FastOptions(cudnn_benchmark=False) if backend == "fast" else None,
        )
        t0 = time.perf_counter()
        for _ in range(3 if backend == "fast" else 2):  # warm-up: kernels picked, built or compiled
            encode.encode_clips(tok, batch, cfg.latent_shape)
        first = time.perf_counter() - t0
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(iters):
            encode.encode_clips(tok, batch, cfg.latent_shape)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out[f"encode_{backend}_clips_per_s"] = iters * batch.shape[0] / (time.perf_counter() - t0)
        out[f"encode_{backend}_warmup_s"] = first
        out[f"encode_{backend}_peak_gib"] = (
            torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
        )
        del tok
    return out


def run_row(name: str, base: prep.PrepareConfig, out: Path, decode_workers: int) -> dict:
    from nemo_cosmos_ar.data.frame_pool import SLOTS_ENV

    backend, prefetch, share, workers, slots = ROWS[name]
    d = int(round(decode_workers * share))
    cfg = dataclasses.replace(base, output=str(out), backend=backend, prefetch=prefetch, decode_workers=d)
    stamps: list[tuple[float, int]] = []
    saved = os.environ.pop(SLOTS_ENV, None)
    if slots is not None:  # read by the worker (this process, or local workers spawned from it)
        os.environ[SLOTS_ENV] = str(slots)
    try:
        summary = prep.prepare_dataset(
            cfg, workers=workers, progress=False, on_progress=lambda n: stamps.append((time.perf_counter(), n))
        )
    finally:
        os.environ.pop(SLOTS_ENV, None)
        if saved is not None:
            os.environ[SLOTS_ENV] = saved
    steady = float("nan")
    if len(stamps) > 1:  # from the first finished unit to the last: tokenizer load, compile and planning excluded
        steady = (sum(n for _, n in stamps) - stamps[0][1]) / max(stamps[-1][0] - stamps[0][0], 1e-9)
    clips = sum(summary.clips.values())
    return {
        "row": name,
        "backend": backend,
        "prefetch": prefetch,
        "decode_workers": d,
        "workers": workers,
        "clips": clips,
        "seconds": summary.seconds,
        "end_to_end_clips_per_s": clips / summary.seconds,
        "pipeline_clips_per_s": steady,
        "stages": summary.stages,
        "phases": summary.phases,
        "summary": summary.format(),
    }


def _fresh_compile_state() -> None:
    """Forget what torch.compile compiled in this process (dynamo's code caches, inductor's loaded kernel modules),
    keeping the on-disk caches: the next fast row compiles as a new ``prepare-data`` process would."""
    if "torch._dynamo" in sys.modules:  # not loaded: nothing was compiled
        torch._dynamo.reset()
    utils = sys.modules.get("torch._inductor.utils")
    if hasattr(utils, "clear_caches"):  # a private helper; without it only dynamo's state is reset
        utils.clear_caches()


def _slots(s: dict) -> str:
    """The frame slots' column: count x size, how long the decode processes waited for one, units that did not fit."""
    if not s.get("slots"):
        return "none"
    size = s["slot_bytes"] / s["slots"] / 1e6
    return f"{int(s['slots'])} x {size:.0f} MB, waited {s['slot_wait']:.1f} s, {int(s['unpooled'])} did not fit"


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("train.bin", "train.idx", "val.bin", "val.idx"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()


def _same_tokens(a: Path, b: Path) -> float:
    x, y = (np.fromfile(f / "train.bin", dtype=np.uint16) for f in (a, b))
    return float((x == y).mean() * 100) if x.shape == y.shape else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny tokenizer on CPU, small clips (about a minute)")
    p.add_argument("--tokenizer-dir", help="existing tokenizer folder (default: random weights, released sizes)")
    p.add_argument("--videos", type=int, default=12, help="source videos")
    p.add_argument("--video-frames", type=int, default=132, help="frames per source video")
    p.add_argument("--video-size", default="720x1280", help="source video HxW")
    p.add_argument("--resolution", default="640x1024", help="clip HxW")
    p.add_argument("--num-frames", type=int, default=33)
    p.add_argument("--window-stride", type=int, default=None, help="default: --num-frames (non-overlapping)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--decode-workers", type=int, default=None, help="decode processes (default: cores / 4, max 8)")
    p.add_argument(
        "--rows", default=",".join(DEFAULT_ROWS), help=f"rows to run, in order, of {list(ROWS)} (default: the first 5)"
    )
    p.add_argument("--budget-s", type=float, default=200.0, help="start no row after this many seconds")
    p.add_argument("--encode-iters", type=int, default=3)
    p.add_argument("--read-clips", type=int, default=48, help="clips read for the read-only stage rate")
    p.add_argument("--workdir", help="where to write videos and datasets (default: a temporary folder)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.smoke:
        args.videos, args.video_frames, args.video_size, args.resolution = 3, 40, "72x108", "64x96"
        args.num_frames, args.batch_size, args.encode_iters = 17, 2, 3
        args.window_stride = args.window_stride or 8
        args.decode_workers = args.decode_workers or 2
        if args.rows == ",".join(DEFAULT_ROWS):  # the fast backend compiles C++ kernels on a CPU for minutes
            args.rows = "sequential,thread,procs"
    elif not torch.cuda.is_available():
        raise SystemExit("no GPU: run with --smoke on CPU")
    decode_workers = args.decode_workers or max(1, min(8, (os.cpu_count() or 4) // 4))
    rows = args.rows.split(",")
    for name in rows:
        if name not in ROWS:
            raise SystemExit(f"unknown row {name!r}; choose from {list(ROWS)}")
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

            tokenizer = str(
                write_random_tokenizer(root / "tokenizer", "tiny" if args.smoke else "dv8x16x16", autoencoder=False)
            )
        base = prep.PrepareConfig(
            videos=str(videos),
            output=str(root / "dataset"),
            resolution=(h, w),
            tokenizer=tokenizer,
            windows=WindowSpec(args.num_frames, args.window_stride or args.num_frames, 1),
            batch_size=args.batch_size,
            backend="eager",
            device="cpu" if args.smoke else None,
            overwrite=True,
        )
        device = "cpu" if args.smoke else "cuda:0"
        t_start = time.perf_counter()
        backends = ["eager"] + (["fast"] if any(ROWS[r][0] == "fast" for r in rows) else [])
        # also warms the page cache and inductor's on-disk cache
        stages = time_stages(base, device, args.encode_iters, backends, args.read_clips)
        results, skipped, folders = [], [], []
        for name in rows:
            if time.perf_counter() - t_start > args.budget_s:
                skipped.append(name)
                continue
            out = root / f"dataset_{len(results)}"
            _fresh_compile_state()
            r = run_row(name, base, out, decode_workers)
            r["digest"] = _digest(out)
            results.append(r)
            folders.append(out)
            print(
                f"  {name}: {r['end_to_end_clips_per_s']:.2f} clips/s end to end, "
                f"{r['pipeline_clips_per_s']:.2f} steady",
                flush=True,
            )
        # the reference is the first eager row, wherever it ran: a fast row before it is compared all the same
        ref = next((k for k, r in enumerate(results) if r["backend"] == "eager"), None)
        for r, out in zip(results, folders):
            r["reference"] = None if ref is None else results[ref]["row"]
            r["same_bytes"] = None if ref is None else r["digest"] == results[ref]["digest"]
            r["tokens_equal_pct"] = float("nan") if ref is None else _same_tokens(folders[ref], out)

    first = results[0] if results else {}
    result = {
        "device": torch.cuda.get_device_name(0) if not args.smoke else "cpu",
        "smoke": args.smoke,
        "clip": f"{args.num_frames}x{h}x{w}",
        "source": f"{args.videos}x{args.video_frames}x{vh}x{vw} H.264",
        "window_stride": base.windows.window_stride,
        "batch_size": args.batch_size,
        "cpu_cores": os.cpu_count(),
        "dtype": str(base.torch_dtype()).replace("torch.", ""),
        "clips": first.get("clips", 0),
        "pipeline_clips_per_s": first.get("pipeline_clips_per_s", float("nan")),
        "rows": results,
        "skipped": skipped,
        **stages,
    }
    if results:
        print("\n" + results[-1]["summary"])
    print(
        f"\n{result['source']} -> {result['clip']} clips, window stride {result['window_stride']}, batch "
        f"{args.batch_size}, {result['dtype']}, {result['device']}, {result['cpu_cores']} CPU cores\n"
    )
    stage_cols = [f"read only {stages['read_clips_per_s']:.2f} clips/s"] + [
        f"encode only {b} {stages[f'encode_{b}_clips_per_s']:.2f} clips/s (warm-up {stages[f'encode_{b}_warmup_s']:.1f} s, "
        f"peak {stages[f'encode_{b}_peak_gib']:.1f} GiB)"
        for b in backends
    ]
    print("stages alone: " + "; ".join(stage_cols) + "\n")
    print(
        "| row | backend | workers | decode procs | prefetch | clips | end to end clips/s | steady clips/s | decode s "
        "| resize s | encode s | write s | encoder waited s | encode loop other s | tokenizer load s | compile s "
        "| same bytes as eager | frame slots |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        s = r["stages"]
        same = "yes" if r["same_bytes"] else f"no ({r['tokens_equal_pct']:.2f} % tokens equal)"
        same = "(no eager row)" if r["same_bytes"] is None else same
        print(
            f"| {r['row']} | {r['backend']} | {r['workers']} | {r['decode_workers']} | {r['prefetch']} | {r['clips']} "
            f"| {r['end_to_end_clips_per_s']:.2f} | {r['pipeline_clips_per_s']:.2f} | {s['decode']:.1f} | "
            f"{s['resize']:.1f} | {s['encode']:.1f} | {s['write']:.1f} | {s['wait']:.1f} | {s.get('other', 0.0):.1f} | "
            f"{s['startup']:.1f} | "
            f"{s['compile']:.1f} | {same} | {_slots(s)} |"
        )
    if results:
        print(f"\nsame bytes as eager: compared with the {results[0]['reference'] or 'no'} row's dataset")
    if skipped:
        print(f"\nskipped (over --budget-s {args.budget_s:.0f}): {', '.join(skipped)}")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
