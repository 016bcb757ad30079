"""Encode/decode throughput and peak memory of the DV8x16x16 tokenizer, eager vs TorchScript backend.

Builds a random-weight tokenizer at the released sizes (``write_random_tokenizer(preset="dv8x16x16")``, traced in
bf16 on the GPU like NVIDIA's export), loads it with both backends, and times ``encode`` on 33×640×1024 clips and
``decode`` of their 5×40×64 token grids at batch 1 and 4. Prints a markdown table (clips/s, peak GPU memory) and
how closely the two backends agree.

Usage::

    python bench/bench_tokenizer.py                     # one GPU: released sizes, bf16, 33x640x1024, batch 1 and 4
    python bench/bench_tokenizer.py --tokenizer-dir checkpoints/Cosmos-Tokenize1-DV8x16x16-720p   # real weights
    python bench/bench_tokenizer.py --smoke             # CPU, tiny network, fp32, 9x64x96 (checks the script)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from nemo_cosmos_ar.tokenizer.backends import load_tokenizer  # noqa: E402
from nemo_cosmos_ar.tokenizer.fixtures import write_random_tokenizer  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, warmup: int, iters: int) -> tuple[float, float, object]:
    """Seconds per call, peak allocated memory in GiB over the timed calls (weights included; NaN on CPU), and the
    last output."""
    out = None
    for _ in range(warmup):  # TorchScript's profiling executor optimises the graph during the first calls
        out = fn()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters):
        out = fn()
    _sync(device)
    elapsed = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return elapsed, peak, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny network on CPU in fp32 (seconds)")
    parser.add_argument("--tokenizer-dir", type=Path, default=None, help="existing tokenizer folder to time")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,4; smoke 1,2)")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()

    if args.smoke:
        device, dtype, preset = torch.device("cpu"), torch.float32, "tiny"
        frames, height, width, batches, example = 9, 64, 96, "1,2", (1, 3, 9, 64, 64)
        args.warmup, args.iters = 1, 1
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no GPU: run with --smoke on CPU")
        device, dtype, preset = torch.device("cuda"), torch.bfloat16, "dv8x16x16"
        frames, height, width, batches, example = 33, 640, 1024, "1,4", (1, 3, 17, 512, 512)  # NVIDIA's trace input
    frames, height, width = args.frames or frames, args.height or height, args.width or width
    batch_sizes = [int(b) for b in (args.batches or batches).split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.tokenizer_dir
        if folder is None:
            t0 = time.perf_counter()
            folder = write_random_tokenizer(
                Path(tmp) / "tok", preset, seed=0, dtype=dtype, device=device, example_shape=example, autoencoder=False
            )
            print(f"wrote random {preset} tokenizer ({dtype}, traced on {device}) in {time.perf_counter() - t0:.1f}s")
        rows, outputs = [], {}
        for backend in ("eager", "jit"):
            # TorchScript runs in its traced dtype (None = the files' dtype); eager runs in the benchmark's dtype.
            tok = load_tokenizer(folder, backend, device, dtype if backend == "eager" else None)
            grid = tok.latent_shape(frames, height, width)
            for batch in batch_sizes:
                gen = torch.Generator(device=device).manual_seed(batch)
                video = torch.rand(batch, 3, frames, height, width, device=device, generator=gen).mul_(2).sub_(1)
                video = video.to(dtype)
                t_enc, m_enc, ids = _timed(lambda: tok.encode(video), device, args.warmup, args.iters)
                t_dec, m_dec, rec = _timed(lambda: tok.decode(ids), device, args.warmup, args.iters)
                outputs[backend, batch] = (ids, rec)
                dt = str(tok.dtype).replace("torch.", "")
                rows.append((backend, dt, batch, batch / t_enc, m_enc, batch / t_dec, m_dec))
            del tok
            if device.type == "cuda":
                torch.cuda.empty_cache()

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\nDV8x16x16 tokenizer ({preset}, {dtype}), {frames}x{height}x{width} clips -> {grid} tokens, {name}, "
          f"torch {torch.__version__}, {args.iters} timed calls after {args.warmup} warm-up\n")
    print("| backend | dtype | batch | encode clips/s | encode peak GiB | decode clips/s | decode peak GiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend, dt, batch, enc, m_enc, dec, m_dec in rows:
        mem_e, mem_d = ("n/a", "n/a") if device.type == "cpu" else (f"{m_enc:.2f}", f"{m_dec:.2f}")
        print(f"| {backend} | {dt} | {batch} | {enc:.2f} | {mem_e} | {dec:.2f} | {mem_d} |")
    for batch in batch_sizes:
        (ids_e, rec_e), (ids_j, rec_j) = outputs["eager", batch], outputs["jit", batch]
        same = (ids_e == ids_j.to(ids_e.device)).float().mean().item()
        diff = (rec_e - rec_j.to(rec_e.device)).abs().max().item()
        print(f"\nbatch {batch}: eager vs jit identical indices {same:.4%}, max |decoded difference| {diff:.3g}")


if __name__ == "__main__":
    main()
