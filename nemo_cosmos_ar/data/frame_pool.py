"""Recycled shared-memory frame buffers ("slots") between a ``prepare-data`` worker and its decode processes.

Why: without them every unit's frames (8 clips of 720p, ~730 MB) travelled in a new shared-memory segment that the
worker mapped (page faults on first touch), copied into pinned staging memory for the DMA, and unmapped: on the
H200 that host-side work took ~0.67 s per unit per transfer thread and capped ``prepare-data`` near 24 clips/s while
the encoder could take 39. With slots, the worker makes ``count`` shared buffers once, before its decode processes
start (they inherit them as Process arguments, by file descriptor), registers each with CUDA once (page-locked, so
the DMA reads it directly: no staging copy), and recycles them unit after unit.

The protocol:

* ``SlotGrants`` (worker) hands free slots to units **in the worker's unit order**, each through the owning decode
  process's grant queue. Consuming units in order while slots go to whichever process asks first could deadlock
  (every slot held by units the worker does not want yet); granting in unit order cannot, with any slot count, so
  the count is set by memory, not by the number of decode processes (``slot_count``).
* A decode process (``SlotWriter``) decodes up to ``depth`` units ahead in its own memory, as before, copies a unit's
  groups into its granted slot one after another (``pack``; the one memcpy that replaces torch's copy into a new
  segment) and sends only the layout (per group: shape, byte offset) with the rest of ``UnitFrames``.
* The worker rebuilds the groups as views of its own mapping (``FramePool.views``) and releases the slot once the
  transfer thread no longer reads it (after its stream has synchronized on CUDA, after the resize on the CPU); only
  then can the slot be granted again, so a slot is never rewritten while the worker may read it.

Slot size (``unit_bytes``): computed from the plan before decoding (frame counts and the probed video sizes, or the
target size when the decode processes resize): the largest unit of the worker. A unit that does not fit after all
(a decoder returned another frame size than the probe said) goes through a per-unit segment as before, and is
counted (``Stats.unpooled``). ``COSMOS_AR_FRAME_SLOTS`` sets the slot count (0: no slots, the per-unit segments).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque

import torch

from nemo_cosmos_ar.data.windows import WindowSpec

SLOTS_ENV = "COSMOS_AR_FRAME_SLOTS"
_ALIGN = 4096  # group offsets within a slot: page-aligned, so every group's DMA starts on a page


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def slot_count(transfers: int, depth: int) -> int:
    """Slots of a worker: ``COSMOS_AR_FRAME_SLOTS`` if set, else ``2 * transfers + depth``.

    Why that many: ``transfers`` units being copied to the device, as many ready to follow them at once, and
    ``depth`` more ready beyond those. Each decode process still decodes ``depth`` units ahead in its own
    (unpinned) memory, so decoding runs ahead as before; the slots only bound what is page-locked. Default (2 CUDA
    transfer threads, ``--prefetch 2``): 6 slots; at 720p, batch 8, disjoint 33-frame windows a slot holds 264
    frames (729.9 MB), so 4.4 GB page-locked per worker."""
    text = os.environ.get(SLOTS_ENV, "").strip()
    if not text:
        return 2 * max(1, transfers) + max(0, depth)
    if not text.isdigit():
        from nemo_cosmos_ar.data.prepare_config import PrepareError

        raise PrepareError(f"{SLOTS_ENV}={text!r} is not a whole number of frame slots (0 turns them off)")
    return int(text)


def unit_bytes(plan: dict, unit: int, spec: WindowSpec, resize_to: tuple[int, int] | None = None) -> int:
    """Bytes of ``unit``'s groups in a slot (page-aligned), from the plan: per run of clips of one video, its unique
    frames at the probed size (or ``resize_to``). A unit's clips of one video are consecutive windows, starts
    ``window_stride`` apart, so ``k`` of them cover at most ``(k - 1) * window_stride + span`` frames (exact with
    ``frame_stride`` 1) and at most ``k * num_frames``."""
    first, count = plan["units"][unit]
    runs: list[list[int]] = []  # [video, clips]
    for v, _, _ in plan["clips"][first : first + count]:
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    total = 0
    for v, k in runs:
        frames = min(k * spec.num_frames, (k - 1) * spec.window_stride + spec.span)
        h, w = resize_to or (plan["videos"][v]["height"], plan["videos"][v]["width"])
        total += _aligned(frames * h * w * 3)
    return total


class FramePool:
    """``count`` shared-memory uint8 buffers of ``nbytes`` each (the worker's side; see the module docstring)."""

    def __init__(self, count: int, nbytes: int):
        self.nbytes = max(_ALIGN, _aligned(nbytes))
        # Made straight in shared memory (ftruncate'd, no pages touched yet), not copied there by share_memory_().
        self.buffers = [
            torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(self.nbytes)) for _ in range(count)
        ]
        self._pinned: list[torch.Tensor] = []

    def views(self, slot: int, layout: list[tuple[tuple[int, ...], int]]) -> list[torch.Tensor]:
        buf = self.buffers[slot]
        return [buf[off : off + _numel(shape)].view(shape) for shape, off in layout]

    def pin(self, device) -> None:
        """Page-lock every slot for ``device`` (once per run; ~0.1-0.2 s per 730 MB slot, done while the tokenizer
        loads). A failure raises: the run would silently lose its fast path otherwise."""
        cudart = torch.cuda.cudart()
        with torch.cuda.device(device):
            for buf in self.buffers:
                rc = cudart.cudaHostRegister(buf.data_ptr(), buf.numel(), 0)
                if rc != cudart.cudaError.success:
                    raise RuntimeError(
                        f"cudaHostRegister of a {buf.numel()}-byte frame slot failed ({torch.cuda.CudaError(rc)}); "
                        f"set {SLOTS_ENV}=0 to send frames without slots"
                    )
                self._pinned.append(buf)

    def close(self, device=None) -> None:
        """Unregister the slots (after every copy from them has finished) and drop this side's mappings (views
        still held elsewhere keep theirs until they go)."""
        if self._pinned:
            cudart = torch.cuda.cudart()
            try:  # a transfer that failed after queueing its copy may still be reading a slot
                torch.cuda.synchronize(device)
            except Exception:  # noqa: BLE001 -- a broken device: unregister all the same, the run is over
                pass
            for buf in self._pinned:
                cudart.cudaHostUnregister(buf.data_ptr())  # best effort at close: nothing to do about a failure
        self._pinned, self.buffers = [], []


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


class SlotGrants:
    """The worker's side of the grants: free slots go to the units of ``order`` in that order, as ``(unit, slot)``
    on ``queues[owner[unit]]``. ``log`` records every ``("grant" | "release", unit, slot)`` in the order it
    happened (the tests check that a slot is granted again only after its release)."""

    def __init__(self, count: int, order: list[int], owner: dict[int, int], queues: list):
        self._free, self._order, self._next = deque(range(count)), order, 0
        self._owner, self._queues = owner, queues
        self._holder: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self.log: list[tuple[str, int, int]] = []
        with self._lock:
            self._grant()

    def _grant(self) -> None:
        while self._free and self._next < len(self._order) and not self._stopped:
            unit, slot = self._order[self._next], self._free.popleft()
            self._next += 1
            self._holder[slot] = unit
            self.log.append(("grant", unit, slot))
            self._queues[self._owner[unit]].put((unit, slot))

    def release(self, slot: int) -> None:
        with self._lock:
            self.log.append(("release", self._holder.pop(slot), slot))
            self._free.append(slot)
            self._grant()

    def stop(self) -> None:
        """Grant nothing more (the decode processes are stopping; their queues may be gone)."""
        with self._lock:
            self._stopped = True


class SlotWriter:
    """A decode process's side: take the grant of the next unit it sends, and copy the unit's groups into it."""

    def __init__(self, buffers: list[torch.Tensor], grants, stopped):
        self.buffers, self._grants, self._stopped = buffers, grants, stopped
        self._ready: deque = deque()  # grants taken but not used yet (in unit order)

    def take(self, unit: int, block: bool, poll: float) -> int | None:
        """The slot granted to ``unit``: None if not granted yet and not ``block``; raises ``Stopped`` when the
        run ended (``stopped()``) while waiting."""
        while not self._ready:
            try:
                self._ready.append(self._grants.get(timeout=poll) if block else self._grants.get_nowait())
            except queue.Empty:
                if not block:
                    return None
                if self._stopped():
                    raise Stopped from None
        granted, slot = self._ready.popleft()
        if granted != unit:  # cannot happen: grants follow the unit order, and so does this process
            raise RuntimeError(f"frame slot granted to unit {granted}, expected {unit}")
        return slot

    def pack(self, frames, slot: int) -> list[tuple[tuple[int, ...], int]] | None:
        """Copy ``frames.groups`` into ``slot`` (and drop them); their layout, or None if they do not fit (the
        groups stay)."""
        layout, end = [], 0
        for g in frames.groups:
            if g.dtype != torch.uint8:
                return None
            layout.append((tuple(g.shape), _aligned(end)))
            end = layout[-1][1] + g.numel()
        buf = self.buffers[slot]
        if end > buf.numel():
            return None
        for g, (shape, off) in zip(frames.groups, layout):
            buf[off : off + g.numel()].view(shape).copy_(g)
        frames.groups = []
        return layout


class Stopped(Exception):
    """The run ended while a decode process waited for a slot."""


def wait_slot(writer: SlotWriter, unit: int, block: bool, poll: float) -> tuple[int | None, float]:
    """``writer.take`` and the seconds it waited."""
    start = time.perf_counter()
    slot = writer.take(unit, block, poll)
    return slot, time.perf_counter() - start
