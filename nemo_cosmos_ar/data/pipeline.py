"""Keeping the encoder busy: decoded units flow to one ``prepare-data`` worker's encode loop through a bounded queue.

Three ways to produce a worker's units, in unit order, all giving the same frames (``frames.py``), hence the same
bytes (tests/test_data_pipeline.py):

* ``prefetch=0``: sequential. Decode, resize, encode, write, one after the other (the reference path).
* ``prefetch=N``, ``decode_workers=0``: one thread decodes (and resizes) up to N units ahead of the encoder.
* ``prefetch=N``, ``decode_workers=P``: P processes decode, each up to N units ahead; a thread of the worker
  moves their frames to the device, resizes and queues them. Use it when one thread cannot decode fast enough (the
  decoder holds the GIL part of the time, and one H.264 stream spreads over a few cores at most). Units that share a
  video go to the same process, in order (``segments``), so every video is decoded forward by one reader and a bad
  video fails the same clips as in the sequential path.
  The frames travel in a few recycled shared-memory buffers of the worker ("frame slots", ``frame_pool.py``),
  page-locked once on a GPU so that the copy to the device is a direct DMA; only their layout goes through the
  queues. ``COSMOS_AR_FRAME_SLOTS=0`` sends each unit's frames in a new segment instead (staged through pinned
  memory by ``frames._to_device``).

The thread and the processes start when the ``FrameSource`` is made, before the worker loads its tokenizer, so
decoding overlaps that start-up. Queues are bounded, so at most about ``prefetch`` units per producer are in memory.
Every stage is timed (``Stats``): decode (and CPU resize), resize (the copy to the device and the resize there),
encode, write, how long the encoder waited for frames -- the number that says whether decoding is the bottleneck --
and the start-up; and the frame slots' size and use.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch

from nemo_cosmos_ar.data import frame_pool
from nemo_cosmos_ar.data.frames import ClipReader, UnitFrames, unit_clips
from nemo_cosmos_ar.data.prepare_config import PrepareError
from nemo_cosmos_ar.data.windows import WindowSpec

_POLL = 0.5  # seconds between liveness checks while a queue is full or empty
# After an error or an interrupt a decode process gets this long to act on SIGTERM before SIGKILL.
_STOP_TIMEOUT = 20.0
# Units moved to the GPU at once by a CUDA worker's producer. One thread moved ~3.7 units/s on an H200 (8 clips of
# 720p frames, ~730 MB, staged through pinned memory: the first touch of the decode processes' shared memory and the
# copy are CPU work) while the encoder takes ~5: two threads overlap two units. Order is kept (``_produce``).
CUDA_TRANSFER_THREADS = 2


@dataclass
class Stats:
    """Seconds per stage, summed over units (and over workers by ``add``), and the frame slots' use. Stages overlap
    when prefetching."""

    decode: float = 0.0
    resize: float = 0.0
    encode: float = 0.0
    write: float = 0.0
    wait: float = 0.0  # the encode loop waiting for the next unit's frames
    startup: float = 0.0  # loading the tokenizer (decoding runs meanwhile)
    compile: float = 0.0  # the ``fast`` backend's first encode call per clip shape (also counted in ``encode``)
    other: float = 0.0  # the encode loop's time outside getting frames, encoding and writing (callbacks, freeing)
    # decode processes' frame slots (frame_pool): how many and their bytes (page-locked on a GPU), the seconds the
    # processes waited for one (back-pressure when the encoder is the limit) and the units too big for one
    slots: float = 0.0
    slot_bytes: float = 0.0
    slot_wait: float = 0.0
    unpooled: float = 0.0

    def add(self, other: Stats | dict) -> Stats:
        other = other if isinstance(other, dict) else other.as_dict()
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + float(other.get(f.name, 0.0)))
        return self

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ReaderArgs:
    """What a ``ClipReader`` needs, picklable for decode processes."""

    root: str
    spec: WindowSpec
    threads: int
    resize_to: tuple[int, int] | None

    def reader(self, plan: dict) -> ClipReader:
        return ClipReader(self.root, plan, self.spec, self.threads, self.resize_to)


def segments(plan: dict, units: list[int]) -> list[list[int]]:
    """``units`` cut into runs of consecutive list entries where each unit shares a video with the one before."""
    out: list[list[int]] = []
    last_video = None
    for u in units:
        first, count = plan["units"][u]
        if out and plan["clips"][first][0] == last_video:
            out[-1].append(u)
        else:
            out.append([u])
        last_video = plan["clips"][first + count - 1][0]
    return out


def _decode_process(args: ReaderArgs, plan_path: str, units: list[int], out, finished, depth: int = 1, slots=None):
    """Entry point of a decode process: decode ``units`` in order into ``out`` (a bounded queue), then wait for
    ``finished``: frames that travel as shared-memory handles must be served by this process until they are taken.

    ``slots``: ``(buffers, grants)`` of the worker's ``frame_pool`` (None: every unit's groups go in a new segment).
    With slots, up to ``depth`` decoded units wait here in this process's memory for their slot, so decoding runs
    ahead as far as it did without them while only the slots are page-locked."""
    import json
    import multiprocessing

    # The worker that started this process (with forkserver it is not the OS parent: ask multiprocessing, whose
    # sentinel pipe closes when the worker exits, however it exits).
    worker = multiprocessing.parent_process()
    torch.set_num_threads(max(1, args.threads))  # used by a CPU resize only
    with open(plan_path) as f:
        plan = json.load(f)
    reader = args.reader(plan)

    def stopped() -> bool:  # closed early, or the worker is gone
        return finished.is_set() or not worker.is_alive()

    def put(item) -> bool:
        while True:
            try:
                out.put(item, timeout=_POLL)
                return True
            except queue.Full:
                if stopped():
                    return False

    writer = None if slots is None else frame_pool.SlotWriter(slots[0], slots[1], stopped)
    pending: deque[UnitFrames] = deque()  # decoded, not sent yet (waiting for a slot), in unit order

    def send(keep: int) -> bool:
        """Send pending units in order; wait for a slot only while more than ``keep`` are pending. False: stop."""
        while pending:
            frames, slot, layout, waited = pending[0], None, None, 0.0
            if writer is not None:
                slot, waited = frame_pool.wait_slot(writer, frames.unit, len(pending) > keep, _POLL)
                if slot is None:
                    return True
                layout = writer.pack(frames, slot)  # None: too big for a slot, its groups travel as before
            if not put(("unit", (frames, slot, layout, waited))):
                return False
            pending.popleft()
        return True

    ahead = max(1, depth) if writer is not None else 0
    error = None
    try:
        try:
            for u in units:
                pending.append(reader.load(u))
                if not send(ahead):
                    return
        except frame_pool.Stopped:
            raise
        except BaseException as e:  # noqa: BLE001 -- reported to the worker, which raises it
            error = e if isinstance(e, PrepareError) else RuntimeError(f"decode process: {e!r}")
        finally:
            reader.close()
        # the units decoded before an error go first: the worker fails where the sequential path would
        if not send(0) or (error is not None and not put(("error", error))):
            return
    except frame_pool.Stopped:
        return
    while not finished.wait(_POLL) and worker.is_alive():
        pass


# What a decode process imports before it decodes: loaded once by the fork server, so that every decode process
# starts with them instead of importing torch and the video readers itself. "__main__" (multiprocessing's default
# list) because every child imports the main script before it runs, unless the fork server did so already.
_PRELOAD = ["__main__", "nemo_cosmos_ar.data.pipeline", "nemo_cosmos_ar.data.decode_preload"]


def _context():
    """The multiprocessing context of the decode processes: ``forkserver`` on Linux, else ``spawn``.

    Why: 16 spawned decode processes each import torch, the package and the video readers, all at once, on the
    cores that should decode: on the H200 host ~10 s passed before the first unit was done. A fork server imports them
    once (``_PRELOAD``) and forks every decode process from that clean state (it never touches CUDA, so forking it
    is safe). The fork server belongs to this process and is started by the first decode process; its preload list
    must be set before then (a later change would be ignored). macOS and Windows keep ``spawn``: forking is unsafe
    or missing there."""
    import sys

    import torch.multiprocessing as mp

    if sys.platform.startswith("linux") and "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return mp.get_context("spawn")


class _Processes:
    """``decode_workers`` decode processes (``_context``); ``get(u)`` returns unit ``u``'s ``UnitFrames`` in
    order, and the slot of ``pool`` its groups are views of (None: their own memory), which ``release`` gives back
    (``frame_pool``). ``stats``: where slot waits and units too big for a slot are counted."""

    def __init__(
        self,
        args: ReaderArgs,
        plan: dict,
        plan_path: str,
        units: list[int],
        count: int,
        depth: int,
        pool: frame_pool.FramePool | None = None,
        stats: Stats | None = None,
    ):
        ctx = _context()
        self.pool, self.stats, self.grants = pool, stats if stats is not None else Stats(), None
        parts: list[list[int]] = [[] for _ in range(count)]
        self.owner: dict[int, int] = {}
        for k, seg in enumerate(segments(plan, units)):
            parts[k % count] += seg
            self.owner.update({u: k % count for u in seg})
        used = [k for k, part in enumerate(parts) if part]
        self.owner = {u: used.index(k) for u, k in self.owner.items()}
        self.queues = [ctx.Queue(maxsize=max(1, depth)) for _ in used]
        self.finished = ctx.Event()
        slots: list = [None] * len(used)
        if pool is not None:
            grant_queues = [ctx.Queue() for _ in used]
            slots = [(pool.buffers, q) for q in grant_queues]
            self.grants = frame_pool.SlotGrants(len(pool.buffers), list(units), self.owner, grant_queues)
        self.procs = [
            ctx.Process(
                target=_decode_process, daemon=True, args=(args, plan_path, parts[k], q, self.finished, depth, slot)
            )
            for k, q, slot in zip(used, self.queues, slots)
        ]
        try:
            for p in self.procs:
                p.start()
        except BaseException:
            self.close()
            raise

    def get(self, unit: int, stop=None) -> tuple[UnitFrames, int | None]:
        """``stop``: a callable; once true, waiting ends with ``frame_pool.Stopped`` (the source is closing)."""
        k = self.owner[unit]
        while True:
            try:
                kind, item = self.queues[k].get(timeout=_POLL)
            except queue.Empty:
                if stop is not None and stop():
                    raise frame_pool.Stopped from None
                if not self.procs[k].is_alive():
                    raise RuntimeError(
                        f"a decode process died (exit code {self.procs[k].exitcode}); rerun to resume"
                    ) from None
                continue
            if kind == "error":
                raise item
            frames, slot, layout, waited = item
            if frames.unit != unit:  # cannot happen: each process decodes its units in order
                raise RuntimeError(f"decode process sent unit {frames.unit}, expected {unit}")
            if slot is not None:
                self.stats.slot_wait += waited
                if layout is None:  # did not fit: the groups came in their own segment, the slot is free again
                    self.stats.unpooled += 1
                    self.release(slot)
                    slot = None
                else:
                    frames.groups = self.pool.views(slot, layout)
            return frames, slot

    def release(self, slot: int) -> None:
        """``slot`` may be granted again: nothing reads it any more."""
        self.grants.release(slot)

    def close(self) -> None:
        if self.grants is not None:  # no more grants: the processes are stopping (a release may still come)
            self.grants.stop()
        self.finished.set()
        started = [p for p in self.procs if p.pid is not None]
        deadline = time.monotonic() + 2 * _POLL  # one grace period for all of them
        for p in started:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in started:
            if p.is_alive():  # still decoding (or starting): an error or an interrupt ended the run early
                p.terminate()
        for p in started:
            p.join(timeout=_STOP_TIMEOUT)
            if p.is_alive():  # SIGTERM not acted on in time
                p.kill()
                p.join(timeout=_STOP_TIMEOUT)


class FrameSource:
    """``(UnitFrames, clips [B, T, H, W, 3] uint8 on device or None)`` for ``units`` in order (see the module
    docstring). With prefetch, the decode processes and the producer thread start here, when the source is made:
    the worker makes it before it loads (and compiles) its tokenizer, so decoding runs meanwhile instead of after it,
    and the bounded queues stop it ``prefetch`` units ahead. Make it after ``torch.cuda.set_device``: the producer
    resizes on ``device``. ``close()`` stops every thread and process it started, iterated or not."""

    def __init__(
        self,
        args: ReaderArgs,
        plan: dict,
        plan_path: str,
        units: list[int],
        resolution: tuple[int, int],
        device,
        prefetch: int,
        decode_workers: int,
        stats: Stats,
        transfer_threads: int | None = None,
    ):
        self._args, self._plan, self._units, self._resolution, self._device = args, plan, units, resolution, device
        self._stats = stats
        self._cuda = torch.device(device).type == "cuda"
        self._transfers = transfer_threads or (CUDA_TRANSFER_THREADS if self._cuda else 1)
        self._local = threading.local()  # each transfer thread's CUDA stream
        self._stop = threading.Event()
        self._procs: _Processes | None = None
        self._pool: frame_pool.FramePool | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        if prefetch <= 0:  # sequential: the reference path; nothing runs ahead
            self._items = self._sequential()
            return
        self._items = self._prefetched()
        self._done = _Handoff(prefetch)
        self._process_args = (plan_path, decode_workers, prefetch) if decode_workers > 0 else None
        # The decode processes are started by the producer thread itself: starting them takes seconds (the fork
        # server imports torch once; spawn imports it per process), and the worker loads its tokenizer meanwhile.
        self._thread = threading.Thread(target=self._produce, name="prepare-data-decode", daemon=True)
        try:
            self._thread.start()
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[tuple[UnitFrames, torch.Tensor | None]]:
        return self

    def __next__(self) -> tuple[UnitFrames, torch.Tensor | None]:
        return next(self._items)

    def close(self) -> None:
        self._items.close()  # the sequential path closes its reader
        self._stop.set()
        with self._lock:  # still None while the producer starts them: it closes them itself when it sees the stop
            procs = self._procs
        if procs is not None:  # first, so that a producer waiting on a process sees it gone
            procs.close()
        if self._thread is not None and self._thread.ident is not None:
            self._thread.join()
        with self._lock:  # after the join: no transfer thread reads a slot any more
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(self._device if self._cuda else None)

    def _sequential(self) -> Iterator[tuple[UnitFrames, torch.Tensor | None]]:
        stats, device = self._stats, self._device
        reader = self._args.reader(self._plan)
        try:
            for u in self._units:
                frames = reader.load(u)
                stats.decode += frames.seconds
                start = time.perf_counter()
                clips = unit_clips(frames, self._resolution, device)
                if self._cuda:
                    torch.cuda.synchronize(device)
                stats.resize += time.perf_counter() - start
                yield frames, clips
        finally:
            reader.close()

    def _start_processes(self) -> _Processes | None:
        plan_path, count, depth = self._process_args
        pool, slots = None, frame_pool.slot_count(self._transfers, depth)
        if slots > 0 and self._units:  # sized for the largest of this worker's units (see frame_pool)
            spec, resize_to = self._args.spec, self._args.resize_to
            nbytes = max(frame_pool.unit_bytes(self._plan, u, spec, resize_to) for u in self._units)
            pool = frame_pool.FramePool(min(slots, len(self._units)), nbytes)
            with self._lock:
                self._pool = pool  # close() frees it, whatever happens next
            self._stats.slots += len(pool.buffers)
            self._stats.slot_bytes += len(pool.buffers) * pool.nbytes
        procs = _Processes(self._args, self._plan, plan_path, self._units, count, depth, pool, self._stats)
        with self._lock:
            self._procs = procs
            stopped = self._stop.is_set()
        if stopped:  # closed while they started: close() saw no processes
            procs.close()
            return None
        if pool is not None and self._cuda:  # while the processes decode their first units and the tokenizer loads
            pool.pin(self._device)
        return procs

    def _transfer(self, frames: UnitFrames, slot: int | None = None) -> tuple[torch.Tensor | None, float]:
        """The unit's clips on the device (copied and resized on this thread's own stream, beside the encoder's
        kernels rather than behind them) and the seconds it took. ``slot``: the frame slot the groups are views of,
        released once nothing reads it (the clips never alias it: the resize or the gather copies)."""
        start = time.perf_counter()
        if self._cuda:
            stream = getattr(self._local, "stream", None)
            if stream is None:
                stream = self._local.stream = torch.cuda.Stream(self._device)
            with torch.cuda.stream(stream):
                clips = unit_clips(frames, self._resolution, self._device)
            stream.synchronize()
        else:
            clips = unit_clips(frames, self._resolution, self._device)
        # Release the host frames here, not when the encode loop drops the unit: unmapping ~730 MB of the decode
        # processes' shared memory takes tens of milliseconds, which the encode loop would pay per unit; a slot goes
        # back to the decode processes. Not after an error: a copy may still be reading it (close() waits for that).
        frames.groups = []
        if slot is not None:
            self._procs.release(slot)
        return clips, time.perf_counter() - start

    def _produce(self) -> None:
        """Fetch units in order (a decode process's queue must be read in its order), move up to ``_transfers`` of
        them to the device at once, and queue them for the encoder in order."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        stats = self._stats
        reader = procs = pool = None
        pending: deque = deque()  # (frames, future of _transfer) in unit order

        def hand_over(keep: int) -> bool:
            while len(pending) > keep:
                frames, job = pending.popleft()
                clips, seconds = job.result()
                stats.resize += seconds
                if not self._done.put(("unit", (frames, clips)), self._stop):
                    return False
            return True

        try:
            if self._process_args is not None:
                procs = self._start_processes()
                if procs is None:
                    return
            else:
                reader = self._args.reader(self._plan)
            if self._transfers > 1:
                pool = ThreadPoolExecutor(self._transfers, thread_name_prefix="prepare-data-transfer")
            for u in self._units:
                frames, slot = procs.get(u, self._stop.is_set) if procs is not None else (reader.load(u), None)
                stats.decode += frames.seconds
                if pool is None:
                    clips, seconds = self._transfer(frames, slot)
                    stats.resize += seconds
                    if not self._done.put(("unit", (frames, clips)), self._stop):
                        return
                    continue
                pending.append((frames, pool.submit(self._transfer, frames, slot)))
                if not hand_over(self._transfers - 1):
                    return
            hand_over(0)
        except BaseException as e:  # noqa: BLE001 -- re-raised by the encode loop
            self._done.put(("error", e), self._stop)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if reader is not None:
                reader.close()

    def _prefetched(self) -> Iterator[tuple[UnitFrames, torch.Tensor | None]]:
        for _ in self._units:
            start = time.perf_counter()
            kind, item = self._done.get()
            self._stats.wait += time.perf_counter() - start
            if kind == "error":
                raise item
            frames, clips = item
            if clips is not None and self._cuda:  # made on the side stream, used on the current one
                clips.record_stream(torch.cuda.current_stream(self._device))
            yield frames, clips


class _Handoff:
    """The bounded queue from the decode thread to the encode loop, made so that Ctrl-C cannot wedge it.

    Why not ``queue.Queue``: its ``get``, interrupted by KeyboardInterrupt at the wrong moment inside
    ``Condition.wait``, can leave the queue's mutex locked. A CI run caught it (gdb on the hung process): the encode
    loop's ``get`` took the interrupt, the decode thread then waited forever for the mutex inside its ``put``, and
    ``close()`` forever for the decode thread. Here the consumer blocks in the C ``SimpleQueue.get``, which has no
    Python-level lock to leave behind, and the producer waits for room by polling the size (``put`` never blocks)."""

    def __init__(self, maxsize: int):
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._max = max(1, maxsize)

    def put(self, item, stop: threading.Event) -> bool:
        """Queue ``item`` once there is room; False (not queued) if ``stop`` is set first."""
        while not stop.is_set():
            if self._q.qsize() < self._max:
                self._q.put(item)
                return True
            time.sleep(0.002)
        return False

    def get(self):
        return self._q.get()
