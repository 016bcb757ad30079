"""Reading and encoding the clips of a ``prepare-data`` run: one worker's loop from units to shard rows.

``ClipReader`` decodes + resizes + crops the clips of a unit, ``encode_clips`` turns them into token rows with the
DV8x16x16 tokenizer, and ``run_worker`` does that for a run of units (prefetching the next unit while one encodes)
and commits each to its shard (``shards.ShardWriter``). Split out of ``prepare.py``, which plans the units and
starts the workers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from nemo_cosmos_ar.data.prepare_config import TOKEN_DTYPE, WORK_DIR, PrepareConfig, PrepareError, _short
from nemo_cosmos_ar.data.shards import ShardWriter
from nemo_cosmos_ar.data.windows import WindowSpec, frame_indices


# ---------------------------------------------------------------------------------------------------------------
# Reading and encoding
# ---------------------------------------------------------------------------------------------------------------


class ClipReader:
    """Reads the clips of a unit as uint8 ``[B, T, H, W, 3]`` at the target size, on ``device``.

    The current video stays open (``video_io.VideoFile``) and its windows are read in increasing order, so the
    decoder moves forward through the file instead of re-decoding from a keyframe for every window. Resized frames
    of the current window are cached, so overlapping windows (stride 1: 33 windows share each frame) decode and
    resize every frame once. A video that fails to decode fails its clips (recorded, not fatal).
    """

    def __init__(self, root: str, plan: dict, resolution: tuple[int, int], spec: WindowSpec, device,
                 decode_threads: int = 2) -> None:  # fmt: skip
        self.root, self.plan, self.resolution, self.spec, self.device = root, plan, resolution, spec, device
        self.decode_threads = decode_threads
        self._video: int | None = None
        self._file = None
        self._cache: dict[int, torch.Tensor] = {}
        self._broken: dict[int, str] = {}

    def _open(self, v: int | None) -> None:
        if self._file is not None:
            self._file.close()
        self._video, self._file, self._cache = v, None, {}
        if v is None:
            return
        from nemo_cosmos_ar import video_io

        info = self.plan["videos"][v]
        path = os.path.join(self.root, info["path"])
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns) != (info["bytes"], info["mtime_ns"]):
            raise PrepareError(f"{path} changed after this run was planned; rerun with --overwrite")
        self._file = video_io.VideoFile(path, threads=self.decode_threads)

    def _frames(self, v: int, ids: list[int]) -> list[torch.Tensor]:
        from nemo_cosmos_ar import video_io

        if self._video != v:
            self._open(v)
        lo = min(ids)
        self._cache = {i: f for i, f in self._cache.items() if i >= lo}  # windows only move forward
        missing = sorted(set(ids) - set(self._cache))
        if missing:
            raw = self._file.frames(missing)
            self._cache.update(zip(missing, video_io.resize_and_crop(raw.to(self.device), *self.resolution)))
        return [self._cache[i] for i in ids]

    def close(self) -> None:
        self._open(None)

    def load(self, unit: int) -> tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]:
        """``(clip ids read, frames [B, T, H, W, 3] uint8 or None, [(clip id, reason)] failed)``."""
        first, count = self.plan["units"][unit]
        ok, clips, failed = [], [], []
        for cid in range(first, first + count):
            v, start, _ = self.plan["clips"][cid]
            if v in self._broken:
                failed.append((cid, self._broken[v]))
                continue
            try:
                clips.append(torch.stack(self._frames(v, frame_indices(start, self.spec))))
                ok.append(cid)
            except PrepareError:
                raise
            except Exception as e:  # noqa: BLE001 -- a bad video loses its clips, the run goes on
                self._broken[v] = f"decode failed ({_short(e)})"
                self._open(None)
                failed.append((cid, self._broken[v]))
        return ok, (torch.stack(clips) if clips else None), failed


def encode_clips(tokenizer, frames: torch.Tensor, latent_shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 ``[B, T, H, W, 3]`` -> token rows ``[B, T'·H'·W']`` uint16 (row-major grid, W fastest)."""
    from nemo_cosmos_ar import video_io

    b, t, h, w, _ = frames.shape
    video = video_io.to_model_range(frames.reshape(b * t, h, w, 3), tokenizer.dtype)  # [3, B·T, H, W]
    video = video.reshape(3, b, t, h, w).transpose(0, 1)
    ids = tokenizer.encode(video)
    if tuple(ids.shape[1:]) != tuple(latent_shape):
        raise PrepareError(f"the tokenizer turned {t}x{h}x{w} clips into a {tuple(ids.shape[1:])} grid, expected "
                           f"{tuple(latent_shape)}: is --tokenizer a DV8x16x16 (8x time, 16x space) tokenizer?")
    return ids.reshape(b, -1).cpu().numpy().astype(TOKEN_DTYPE)


def decode_threads(processes: int = 1) -> int:
    """Decoder threads per worker: the machine's cores shared by the workers on it, at most 8 (H.264 frame
    threading gains little beyond that, and each thread holds frames in flight)."""
    return max(1, min(8, (os.cpu_count() or 1) // max(1, processes)))


def run_worker(cfg: PrepareConfig, plan: dict, units: list[int], shard: str, device: str,
               on_progress=None, threads: int | None = None) -> int:  # fmt: skip
    """Encode ``units`` and append them to ``shard``; returns the number of clips handled. ``threads``: video
    decoder threads (default: all cores, at most 8)."""
    from nemo_cosmos_ar.tokenizer.backends import load_tokenizer

    if not units:
        return 0
    work = os.path.join(cfg.output, WORK_DIR)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        # Same unit -> same batch -> same kernels: keeps a resumed or re-sharded run byte-identical.
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    try:
        tokenizer = load_tokenizer(
            cfg.tokenizer, backend=cfg.backend, device=device, dtype=None if cfg.backend == "jit" else cfg.torch_dtype(),
            pixel_chunk_duration=None, max_enc_batch_size=cfg.batch_size,
        )  # fmt: skip
    except (RuntimeError, ValueError, KeyError, OSError) as e:  # a damaged file: one line, not a torch traceback
        raise PrepareError(f"--tokenizer {cfg.tokenizer} cannot be loaded ({_short(e)}); download the "
                           "Cosmos-Tokenize1-DV8x16x16 folder again") from None  # fmt: skip
    if tokenizer.codebook_size > np.iinfo(TOKEN_DTYPE).max + 1:
        raise PrepareError(f"codebook of {tokenizer.codebook_size} codes does not fit {np.dtype(TOKEN_DTYPE).name}")
    reader = ClipReader(cfg.videos, plan, cfg.resolution, cfg.windows, device,
                        decode_threads=threads or decode_threads())
    writer = ShardWriter(work, shard)
    handled = 0
    try:
        with ThreadPoolExecutor(1) as prefetch:  # decode + resize the next unit while this one encodes
            pending = prefetch.submit(reader.load, units[0])
            for k, unit in enumerate(units):
                clip_ids, frames, failed = pending.result()
                if k + 1 < len(units):
                    pending = prefetch.submit(reader.load, units[k + 1])
                rows = (encode_clips(tokenizer, frames, cfg.latent_shape) if frames is not None
                        else np.zeros((0, 0), TOKEN_DTYPE))  # fmt: skip
                writer.commit(unit, clip_ids, rows, failed)
                handled += len(clip_ids) + len(failed)
                if on_progress is not None:
                    on_progress(len(clip_ids) + len(failed))
    finally:
        reader.close()
        writer.close()
    return handled
