"""The frames of a ``prepare-data`` unit: decode on the CPU (``ClipReader.load``), then resize + crop and stack on
the encoding device (``unit_clips``).

The two halves are apart so that decoding can run ahead of encoding in a thread or in other processes
(``pipeline.py``) while the result stays the same bytes: a unit's frames are a function of the unit alone. ``load``
returns each video's raw frames once per unit (``UnitFrames.groups``, unique frames in increasing order) and which of
them every clip takes (``UnitFrames.index``); ``unit_clips`` resizes each group in one call and gathers the clips. So
overlapping windows (stride 1: 33 windows share each frame) move and resize every frame of a unit once, whichever
path produced it.

Decoding keeps the current video open (``video_io.VideoFile``) and reads its windows in increasing order, so the
decoder moves forward through the file instead of re-decoding from a keyframe for every window; raw frames that the
next window may still need stay cached. A video that fails to decode fails its clips (recorded, not fatal).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch

from nemo_cosmos_ar.data.prepare_config import PrepareError, _short
from nemo_cosmos_ar.data.windows import WindowSpec, frame_indices


@dataclass
class UnitFrames:
    """One unit's decoded frames, on the CPU.

    Attributes:
        unit: unit number.
        clip_ids: clips read, in unit order.
        failed: ``(clip id, reason)`` of the clips whose video failed to decode.
        groups: per run of clips from one video, its unique frames ``[F, H, W, 3]`` uint8 (raw, or already at the
            target size when the reader resizes).
        index: per clip read, ``(group, rows of that group's frames)``.
        resized: whether ``groups`` are at the target size already.
        seconds: time spent decoding (and resizing, when ``resized``).
    """

    unit: int
    clip_ids: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    groups: list[torch.Tensor] = field(default_factory=list)
    index: list[tuple[int, list[int]]] = field(default_factory=list)
    resized: bool = False
    seconds: float = 0.0


class ClipReader:
    """Decodes the clips of units on the CPU (see the module docstring).

    Args:
        root: the videos folder.
        plan: the run's plan (``prepare.make_plan``).
        spec: clip windows.
        decode_threads: FFmpeg threads of the open video.
        resize_to: ``(height, width)`` to resize + crop to here, on the CPU; None leaves that to ``unit_clips``.
    """

    def __init__(
        self, root: str, plan: dict, spec: WindowSpec, decode_threads: int = 2, resize_to: tuple[int, int] | None = None
    ) -> None:
        self.root, self.plan, self.spec, self.decode_threads = root, plan, spec, decode_threads
        self.resize_to = resize_to
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

    def _frames(self, v: int, ids: list[int]) -> dict[int, torch.Tensor]:
        if self._video != v:
            self._open(v)
        lo = min(ids)
        self._cache = {i: f for i, f in self._cache.items() if i >= lo}  # windows only move forward
        missing = sorted(set(ids) - set(self._cache))
        if missing:
            self._cache.update(zip(missing, self._file.frames(missing)))
        return {i: self._cache[i] for i in ids}

    def close(self) -> None:
        self._open(None)

    def load(self, unit: int) -> UnitFrames:
        """Decode the clips of ``unit`` (see ``UnitFrames``)."""
        start_time = time.perf_counter()
        first, count = self.plan["units"][unit]
        out = UnitFrames(unit)
        runs: list[tuple[int, dict[int, torch.Tensor], list[tuple[int, list[int]]]]] = []  # (video, frames, clips)
        for cid in range(first, first + count):
            v, start, _ = self.plan["clips"][cid]
            if v in self._broken:
                out.failed.append((cid, self._broken[v]))
                continue
            ids = frame_indices(start, self.spec)
            try:
                frames = self._frames(v, ids)
            except PrepareError:
                raise
            except Exception as e:  # noqa: BLE001 -- a bad video loses its clips, the run goes on
                self._broken[v] = f"decode failed ({_short(e)})"
                self._open(None)
                out.failed.append((cid, self._broken[v]))
                continue
            if not runs or runs[-1][0] != v:
                runs.append((v, {}, []))
            runs[-1][1].update(frames)
            runs[-1][2].append((cid, ids))
        by_clip: dict[int, tuple[int, list[int]]] = {}
        for g, (_, frames, clips) in enumerate(runs):
            order = sorted(frames)
            row = {i: r for r, i in enumerate(order)}
            group = torch.stack([frames[i] for i in order])
            if self.resize_to is not None:
                from nemo_cosmos_ar import video_io

                group = video_io.resize_and_crop(group, *self.resize_to)
            out.groups.append(group)
            by_clip.update({cid: (g, [row[i] for i in ids]) for cid, ids in clips})
        out.clip_ids = sorted(by_clip)
        out.index = [by_clip[c] for c in out.clip_ids]
        out.resized = self.resize_to is not None
        out.seconds = time.perf_counter() - start_time
        return out


def unit_clips(frames: UnitFrames, resolution: tuple[int, int], device) -> torch.Tensor | None:
    """The clips of a unit as uint8 ``[B, T, H, W, 3]`` at ``resolution`` on ``device`` (None if none was read)."""
    from nemo_cosmos_ar import video_io

    if not frames.clip_ids:
        return None
    groups = [_to_device(g, device) for g in frames.groups]
    if not frames.resized:
        groups = [video_io.resize_and_crop(g, *resolution) for g in groups]
    return torch.stack([groups[g][rows] for g, rows in frames.index])


# Bytes per pinned staging chunk of ``_to_device``: small enough that the CPU copy of one chunk overlaps the DMA of
# the one before (and that the caching host allocator recycles a few 64 MiB blocks), large enough to keep the DMA fast.
_STAGE_BYTES = 64 << 20


def _to_device(t: torch.Tensor, device) -> torch.Tensor:
    """``t`` on ``device``. A pageable CPU tensor bound for a CUDA device goes through pinned staging buffers.

    Why: a unit's raw frames (8 clips of 720p, ~730 MB of uint8, in the decode processes' shared memory, which is
    pageable) took ~370 ms per unit through a plain ``.to(device)`` on the H200 -- the producer thread's busiest
    stage, capping prepare-data near 20 clips/s whatever the decoders and the encoder could do. A pageable copy is
    synchronous and goes through the driver's small bounce buffer; copying into pinned memory (torch's caching host
    allocator, so the blocks are reused unit after unit) and then DMA-ing with ``non_blocking`` lets the CPU copy of
    chunk i+1 run while chunk i crosses the bus. The DMA runs on the current stream; the host allocator records that
    stream's use, so a staging block is not handed out again before its copy has finished, on any stream. The bytes
    are the same as ``t.to(device)``'s.

    A tensor already page-locked (a decode process's frame slot, registered with CUDA once: ``frame_pool``) is
    DMA'd directly and asynchronously, on the current stream: the caller must keep it unchanged until that stream
    has synchronized (``pipeline.FrameSource._transfer`` releases the slot only then).
    """
    device = torch.device(device)
    if device.type != "cuda" or t.device.type != "cpu" or t.dim() == 0 or t.numel() == 0:
        return t.to(device)
    if t.is_pinned():
        return t.to(device, non_blocking=True)
    return _staged_copy(t, device, pin=True)


def _staged_copy(t: torch.Tensor, device, pin: bool, chunk_bytes: int = _STAGE_BYTES) -> torch.Tensor:
    """``t`` (CPU, at least 1-D) copied to ``device`` in chunks of leading rows, each through a fresh staging
    tensor (pinned when ``pin``). Apart from ``_to_device`` so that the chunking is testable without a GPU."""
    t = t.contiguous()
    out = torch.empty(t.shape, dtype=t.dtype, device=device)
    rows = max(1, chunk_bytes // max(1, t[0].nbytes))
    for a in range(0, t.shape[0], rows):
        part = t[a : a + rows]
        stage = torch.empty(part.shape, dtype=t.dtype, pin_memory=pin)
        stage.copy_(part)  # the CPU copy (multi-threaded); overlaps the previous chunk's DMA
        out[a : a + rows].copy_(stage, non_blocking=True)
    return out
