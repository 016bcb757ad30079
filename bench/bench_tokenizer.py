"""Encode/decode throughput, compile time, peak memory and accuracy of the DV8x16x16 tokenizer backends.

Builds a random-weight tokenizer at the released sizes (``write_random_tokenizer(preset="dv8x16x16")``, traced in
bf16 on the GPU like NVIDIA's export; or times a real folder with ``--tokenizer-dir``) and times ``encode`` of
33×640×1024 clips and ``decode`` of their 5×40×64 token grids for each backend configuration:

* ``eager``, ``jit`` (NVIDIA's TorchScript files) at batch 1 and 4;
* the ``fast`` backend change by change at batch 4, uncompiled (``+cudnn.benchmark``, ``+fused Haar``, then
  ``+channels_last``), then ``fast`` = its defaults (fused Haar, eager reductions, cuDNN autotuning, no channels-last)
  + torch.compile, and compiled variants with one default changed: ``fast-inductor-reductions`` (GroupNorm and
  softmax left to inductor), ``fast+channels_last``, ``fast-unfused-Haar``, ``fast-compiled-Haar`` (the fused
  Haar transforms compiled into inductor's kernels instead of kept eager), ``fast-no-cudnn.benchmark``; then
  ``fast`` at batch 1 and ``--best-batch``, ``+CUDA graphs`` and ``fast-fp32-intermediates`` (inductor's fused kernels without eager's bf16
  rounding of intermediates).

The clips are 8 smooth synthetic videos (a camera moving over the bundled photographs), not noise, so that the
agreement columns mean something: for every configuration at batch 4, the % of indices equal to eager's (same dtype)
over the 8 clips, and the PSNR of its decoding of eager's indices against eager's decoding (data range [-1, 1]), also
on the 8-bit frames a video file gets (rounded as ``video_io.to_uint8_frames``).
"first call s" is the first encode + decode call with a new shape: torch.compile pays its compile cost there, once
per shape (cuDNN autotuning too). Rows are run in priority order until ``--budget-s`` is spent; the rest are listed as
skipped. Prints markdown tables.

Usage::

    python bench/bench_tokenizer.py                     # one GPU: released sizes, bf16, 33x640x1024 (~4 min cold)
    python bench/bench_tokenizer.py --tokenizer-dir checkpoints/Cosmos-Tokenize1-DV8x16x16-720p   # real weights
    python bench/bench_tokenizer.py --rows fast:4,fast-autotune:4   # chosen rows only (names: see ROWS)
    python bench/bench_tokenizer.py --smoke             # CPU, tiny network, fp32, 9x64x96 (checks the script)
    python bench/bench_tokenizer.py --smoke --dtype bfloat16 --compile-backend inductor --rows eager:4,fast:4 \
        --frames 33 --height 256 --width 384            # CPU bf16 agreement of inductor's kernels (minutes)
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer  # noqa: E402
from nemo_cosmos_ar.tokenizer.fast import FastOptions  # noqa: E402
from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer  # noqa: E402

_LADDER = dict(compile=False, channels_last=False, fused_haar=False, eager_reductions=False, cudnn_benchmark=True)
# name -> (backend, FastOptions keyword arguments or None)
CONFIGS = {
    "eager": ("eager", None),
    "jit": ("jit", None),
    "+cudnn.benchmark": ("fast", _LADDER),
    "+fused Haar": ("fast", {**_LADDER, "fused_haar": True}),
    "+channels_last": ("fast", {**_LADDER, "fused_haar": True, "channels_last": True}),
    "fast": ("fast", {}),
    "fast-inductor-reductions": ("fast", {"eager_reductions": False}),
    "fast+channels_last": ("fast", {"channels_last": True}),
    "fast-unfused-Haar": ("fast", {"fused_haar": False}),
    "fast-compiled-Haar": ("fast", {"opaque_haar": False}),
    "fast-no-cudnn.benchmark": ("fast", {"cudnn_benchmark": False}),
    "+CUDA graphs": ("fast", {"compile_mode": "reduce-overhead"}),
    "fast-fp32-intermediates": ("fast", {"emulate_precision_casts": False}),
    "fast-autotune": ("fast", {"compile_mode": "max-autotune-no-cudagraphs"}),
}
# Priority order: the eager reference, the cheap (uncompiled) ladder, fast at batch 4 (the acceptance row), its
# variants that decide the defaults (each compiles again, ~30-80 s cold on an H200), then the rest.
ROWS = (
    "eager:4,+cudnn.benchmark:4,+fused Haar:4,+channels_last:4,fast:4,fast-inductor-reductions:4,"
    "fast+channels_last:4,fast-unfused-Haar:4,eager:1,fast:best,fast:1,+CUDA graphs:4,fast-fp32-intermediates:4,"
    "jit:4,jit:1"
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def real_looking_clips(count: int, frames: int, height: int, width: int) -> torch.Tensor:
    """``[count, 3, T, H, W]`` in [-1, 1]: a camera moving over the bundled photographs (bouncing balls without)."""
    from nemo_cosmos_ar import video_io
    from nemo_cosmos_ar.data import samples

    photos, clips = samples.find_photos(), []
    for i in range(count):
        if photos:
            photo = samples.load_photo(photos[i % len(photos)])
            clip = samples.render_camera_move(
                photo, samples.MOTIONS[i % len(samples.MOTIONS)], frames, height, width, seed=i
            )
        else:
            clip = samples.render_bouncing_balls(frames, height, width, seed=i)
        clips.append(video_io.to_model_range(clip))
    return torch.stack(clips)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two videos in [-1, 1] (peak-to-peak 2); inf when equal."""
    mse = (a.float() - b.float()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def psnr_uint8(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of the 8-bit frames a video file gets (``video_io.to_uint8_frames``'s rounding, peak 255)."""

    def frames(v: torch.Tensor) -> torch.Tensor:
        return ((v.float().clamp(-1, 1) + 1) / 2 * 255).round()

    mse = (frames(a) - frames(b)).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _timed(fn, device: torch.device, warmup: int, iters: int) -> tuple[float, float, float, object]:
    """(first call seconds, seconds per timed call, peak GiB over the timed calls (NaN on CPU), last output)."""
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    first = time.perf_counter() - start
    for _ in range(warmup - 1):  # CUDA graphs record on the 2nd/3rd call; TorchScript optimises on early calls
        out = fn()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters):
        out = fn()
    _sync(device)
    elapsed = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return first, elapsed, peak, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny network on CPU in fp32 (about a minute)")
    parser.add_argument("--tokenizer-dir", type=Path, default=None, help="existing tokenizer folder to time")
    parser.add_argument("--rows", default=ROWS, help=f"CONFIG:BATCH list in run order (default {ROWS})")
    parser.add_argument("--best-batch", type=int, default=8, help="the batch of the fast:best row")
    parser.add_argument("--budget-s", type=float, default=150.0, help="start no row after this many seconds")
    parser.add_argument("--clips", type=int, default=8, help="real-looking clips for the agreement columns")
    parser.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor)")
    parser.add_argument("--dtype", default=None, help="float dtype (default bfloat16 on the GPU, float32 --smoke)")
    parser.add_argument("--preset", default=None, help="random network sizes (default dv8x16x16; tiny --smoke)")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()

    if args.smoke:
        device, dtype, preset = torch.device("cpu"), torch.float32, "tiny"
        frames, height, width, example = 9, 64, 96, (1, 3, 9, 64, 64)
        args.warmup, args.iters, args.best_batch = 2, 1, 2
        args.compile_backend = args.compile_backend or "aot_eager"  # inductor's C++ kernels take minutes on a CPU
        if args.rows == ROWS:  # one compiled shape (aot_eager still traces for a while), no CUDA graphs
            args.rows = (
                "eager:4,eager:1,+cudnn.benchmark:4,+fused Haar:4,+channels_last:4,fast:4,"
                "fast-inductor-reductions:4,jit:4"
            )
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no GPU: run with --smoke on CPU")
        device, dtype, preset = torch.device("cuda"), torch.bfloat16, "dv8x16x16"
        frames, height, width, example = 33, 640, 1024, (1, 3, 17, 512, 512)  # NVIDIA's trace input
    frames, height, width = args.frames or frames, args.height or height, args.width or width
    dtype, preset = getattr(torch, args.dtype) if args.dtype else dtype, args.preset or preset
    rows = []
    for item in args.rows.split(","):
        name, batch = item.rsplit(":", 1)
        if name not in CONFIGS:
            raise SystemExit(f"unknown row config {name!r}; choose from {list(CONFIGS)}")
        rows.append((name, args.best_batch if batch == "best" else int(batch)))

    t_start = time.perf_counter()
    clips = real_looking_clips(args.clips, frames, height, width).to(device, dtype)
    print(f"rendered {args.clips} clips of {frames}x{height}x{width} in {time.perf_counter() - t_start:.1f} s")
    results, skipped, ref = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.tokenizer_dir
        if folder is None:
            t0 = time.perf_counter()
            folder = write_random_tokenizer(
                Path(tmp) / "tok", preset, seed=0, dtype=dtype, device=device, example_shape=example, autoencoder=False
            )
            print(f"wrote random {preset} tokenizer ({dtype}, traced on {device}) in {time.perf_counter() - t0:.1f}s")
        t_start = time.perf_counter()
        toks: dict[str, object] = {}
        for name, batch in rows:
            if time.perf_counter() - t_start > args.budget_s:
                skipped.append(f"{name}:{batch}")
                continue
            backend, opts = CONFIGS[name]
            if name not in toks:  # one tokenizer per configuration, so each shape compiles once
                toks.clear()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                fast = None
                if opts is not None:
                    fast = FastOptions(
                        **opts, **({"compile_backend": args.compile_backend} if args.compile_backend else {})
                    )
                toks[name] = load_tokenizer(
                    folder,
                    backend,
                    device,
                    dtype if backend != "jit" else None,
                    pixel_chunk_duration=None,
                    max_enc_batch_size=batch,
                    max_dec_batch_size=batch,
                    fast_options=fast,
                )
            tok = toks[name]
            tok.max_enc_batch_size = tok.max_dec_batch_size = batch
            video = clips[torch.arange(batch) % len(clips)]
            f_enc, t_enc, m_enc, ids = _timed(
                lambda tok=tok, video=video: tok.encode(video), device, args.warmup, args.iters
            )
            f_dec, t_dec, m_dec, _ = _timed(lambda tok=tok, ids=ids: tok.decode(ids), device, args.warmup, args.iters)
            row = {
                "name": name,
                "batch": batch,
                "dtype": str(tok.dtype).replace("torch.", ""),
                "enc": batch / t_enc,
                "dec": batch / t_dec,
                "first": f_enc + f_dec,
                "mem_enc": m_enc,
                "mem_dec": m_dec,
                "same": float("nan"),
                "psnr": float("nan"),
                "psnr8": float("nan"),
            }
            if batch == 4:
                # agreement over all the clips, in sub-batches of this row's size (shapes already compiled)
                all_ids = torch.cat([tok.encode(clips[i : i + batch]) for i in range(0, len(clips), batch)])
                if name == "eager":
                    ref["ids"] = all_ids
                    ref["rec"] = torch.cat([tok.decode(all_ids[i : i + batch]) for i in range(0, len(clips), batch)])
                if ref and tok.dtype == dtype:
                    rec = torch.cat([tok.decode(ref["ids"][i : i + batch]) for i in range(0, len(clips), batch)])
                    row["same"] = (all_ids == ref["ids"]).float().mean().item() * 100
                    row["psnr"] = psnr(rec, ref["rec"])
                    row["psnr8"] = psnr_uint8(rec, ref["rec"])
            results.append(row)
            print(
                f"  {name} batch {batch}: encode {row['enc']:.2f} clips/s, decode {row['dec']:.2f} clips/s, "
                f"first call {row['first']:.1f} s",
                flush=True,
            )
        toks.clear()

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"\nDV8x16x16 tokenizer ({preset}, {dtype}), {frames}x{height}x{width} clips, {gpu}, torch {torch.__version__}, "
        f"{args.iters} timed calls after {args.warmup} warm-up; agreement over {args.clips} clips vs eager {dtype}\n"
    )
    print(
        "| config | backend | batch | encode clips/s | decode clips/s | first call s (compile) | encode peak GiB "
        "| decode peak GiB | indices = eager % | decode PSNR vs eager dB | 8-bit frames PSNR dB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        mem_e, mem_d = ("n/a", "n/a") if device.type == "cpu" else (f"{r['mem_enc']:.2f}", f"{r['mem_dec']:.2f}")
        same = "" if math.isnan(r["same"]) else f"{r['same']:.3f}"
        db, db8 = (
            "" if math.isnan(x) else ("identical" if math.isinf(x) else f"{x:.1f}") for x in (r["psnr"], r["psnr8"])
        )
        print(
            f"| {r['name']} | {CONFIGS[r['name']][0]} | {r['batch']} | {r['enc']:.2f} | {r['dec']:.2f} | "
            f"{r['first']:.1f} | {mem_e} | {mem_d} | {same} | {db} | {db8} |"
        )
    if skipped:
        print(f"\nskipped (over --budget-s {args.budget_s:.0f}): {', '.join(skipped)}")


if __name__ == "__main__":
    main()
