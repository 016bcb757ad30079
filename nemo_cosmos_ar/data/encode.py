"""Reading and encoding the clips of a ``prepare-data`` run: one worker's loop from units to shard rows.

``frames.ClipReader`` decodes the clips of a unit and ``frames.unit_clips`` resizes + crops them on the device;
``pipeline.FrameSource`` runs that ahead of the encoder (a thread, or decode processes, through bounded queues),
starting before the tokenizer loads;
``encode_clips`` turns the clips into token rows with the DV8x16x16 tokenizer, and ``run_worker`` does that for a run
of units and commits each to its shard (``shards.ShardWriter``). Split out of ``prepare.py``, which plans the units
and starts the workers.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from nemo_cosmos_ar.data.frames import ClipReader, UnitFrames, unit_clips  # noqa: F401 -- re-exported
from nemo_cosmos_ar.data.pipeline import FrameSource, ReaderArgs, Stats
from nemo_cosmos_ar.data.prepare_config import PLAN_FILE, TOKEN_DTYPE, WORK_DIR, PrepareConfig, PrepareError, _short
from nemo_cosmos_ar.data.shards import ShardWriter


def encode_clips(tokenizer, frames: torch.Tensor, latent_shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 ``[B, T, H, W, 3]`` -> token rows ``[B, T'·H'·W']`` uint16 (row-major grid, W fastest)."""
    from nemo_cosmos_ar import video_io

    b, t, h, w, _ = frames.shape
    video = video_io.to_model_range(frames.reshape(b * t, h, w, 3), tokenizer.dtype)  # [3, B·T, H, W]
    video = video.reshape(3, b, t, h, w).transpose(0, 1)
    ids = tokenizer.encode(video)
    if tuple(ids.shape[1:]) != tuple(latent_shape):
        raise PrepareError(
            f"the tokenizer turned {t}x{h}x{w} clips into a {tuple(ids.shape[1:])} grid, expected "
            f"{tuple(latent_shape)}: is --tokenizer a DV8x16x16 (8x time, 16x space) tokenizer?"
        )
    return ids.reshape(b, -1).cpu().numpy().astype(TOKEN_DTYPE)


def worker_cores(processes: int = 1) -> int:
    """CPU cores of one worker: the machine's cores shared by the ``processes`` workers on it."""
    return max(1, (os.cpu_count() or 1) // max(1, processes))


def decode_threads(processes: int = 1, readers: int = 1) -> int:
    """FFmpeg threads of one video reader: a worker's cores shared by its ``readers`` (decode processes), at most 8
    (H.264 frame threading gains little beyond that, and each thread holds frames in flight)."""
    return max(1, min(8, worker_cores(processes) // max(1, readers)))


def run_worker(
    cfg: PrepareConfig,
    plan: dict,
    units: list[int],
    shard: str,
    device: str,
    on_progress=None,
    threads: int | None = None,
    stats: Stats | None = None,
) -> int:
    """Encode ``units`` and append them to ``shard``; returns the number of clips handled. ``threads``: CPU
    cores of this worker (default: all), shared by its decode processes (each reader at most 8 decoder threads);
    ``stats``: where to add the seconds each stage took."""
    if not units:
        return 0
    stats = stats if stats is not None else Stats()
    work = os.path.join(cfg.output, WORK_DIR)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        # Same unit -> same batch -> same kernels: keeps a resumed or re-sharded run byte-identical.
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    cores = threads or worker_cores()
    per_reader = max(1, min(8, cores // max(1, cfg.decode_workers)))
    resize_to = cfg.resolution if cfg.resize_device == "cpu" else None
    args = ReaderArgs(cfg.videos, cfg.windows, per_reader, resize_to)
    # Decoding starts now (after set_device: it resizes on the device) and runs while the tokenizer loads.
    source = FrameSource(
        args,
        plan,
        os.path.join(work, PLAN_FILE),
        units,
        cfg.resolution,
        device,
        cfg.prefetch,
        cfg.decode_workers,
        stats,
    )
    writer = tokenizer = None
    handled = 0
    try:
        start = time.perf_counter()
        tokenizer = _load_tokenizer(cfg, device)
        stats.startup += time.perf_counter() - start
        writer = ShardWriter(work, shard)
        loop_start, fetching = time.perf_counter(), 0.0
        encode_before, write_before = stats.encode, stats.write
        while True:
            start = time.perf_counter()
            try:
                frames, clips = next(source)
            except StopIteration:
                break
            finally:
                fetching += time.perf_counter() - start
            start = time.perf_counter()
            rows = (
                encode_clips(tokenizer, clips, cfg.latent_shape) if clips is not None else np.zeros((0, 0), TOKEN_DTYPE)
            )
            written = time.perf_counter()
            stats.encode += written - start
            writer.commit(frames.unit, frames.clip_ids, rows, frames.failed)
            stats.write += time.perf_counter() - written
            n = len(frames.clip_ids) + len(frames.failed)
            handled += n
            if on_progress is not None:
                on_progress(n)
        # What the loop's timers miss (dropping a unit, progress callbacks, waiting for the GIL): wall time minus
        # getting frames, encoding and writing.
        total = time.perf_counter() - loop_start
        stats.other += max(0.0, total - fetching - (stats.encode - encode_before) - (stats.write - write_before))
    finally:
        source.close()
        if writer is not None:
            writer.close()
        compiled = getattr(tokenizer, "compile_seconds", {})  # the fast backend's first calls per shape
        stats.compile += sum(v for (name, _), v in compiled.items() if name == "encode")
    return handled


def _load_tokenizer(cfg: PrepareConfig, device: str):
    from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

    fast_options = None
    if cfg.backend == "fast":  # timed algorithm choices may differ between runs: not for byte-identical datasets
        from nemo_cosmos_ar.tokenizer.fast import FastOptions

        fast_options = FastOptions(cudnn_benchmark=False)
    try:
        tokenizer = load_tokenizer(
            cfg.tokenizer,
            backend=cfg.backend,
            device=device,
            dtype=None if cfg.backend == "jit" else cfg.torch_dtype(),
            pixel_chunk_duration=None,
            max_enc_batch_size=cfg.batch_size,
            fast_options=fast_options,
        )
    except (RuntimeError, ValueError, KeyError, OSError) as e:  # a damaged file: one line, not a torch traceback
        raise PrepareError(
            f"--tokenizer {cfg.tokenizer} cannot be loaded ({_short(e)}); download the "
            "Cosmos-Tokenize1-DV8x16x16 folder again"
        ) from None
    if tokenizer.codebook_size > np.iinfo(TOKEN_DTYPE).max + 1:
        raise PrepareError(f"codebook of {tokenizer.codebook_size} codes does not fit {np.dtype(TOKEN_DTYPE).name}")
    return tokenizer
