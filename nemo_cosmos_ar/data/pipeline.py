"""Keeping the encoder busy: decoded units flow to one ``prepare-data`` worker's encode loop through a bounded queue.

Three ways to produce a worker's units, in unit order, all giving the same frames (``frames.py``), hence the same
bytes (tests/test_data_pipeline.py):

* ``prefetch=0``: sequential. Decode, resize, encode, write, one after the other (the reference path).
* ``prefetch=N``, ``decode_workers=0``: one thread decodes (and resizes) up to N units ahead of the encoder.
* ``prefetch=N``, ``decode_workers=P``: P spawned processes decode, each up to N units ahead; a thread of the worker
  moves their frames to the device, resizes and queues them. Use it when one thread cannot decode fast enough (the
  decoder holds the GIL part of the time, and one H.264 stream spreads over a few cores at most). Units that share a
  video go to the same process, in order (``segments``), so every video is decoded forward by one reader and a bad
  video fails the same clips as in the sequential path.

Queues are bounded, so at most about ``prefetch`` units per producer are in memory. Every stage is timed
(``Stats``): decode (and CPU resize), resize (on the device), encode, write, and how long the encoder waited for
frames -- the number that says whether decoding is the bottleneck.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch

from nemo_cosmos_ar.data.frames import ClipReader, UnitFrames, unit_clips
from nemo_cosmos_ar.data.prepare_config import PrepareError
from nemo_cosmos_ar.data.windows import WindowSpec

_POLL = 0.5  # seconds between liveness checks while a queue is full or empty


@dataclass
class Stats:
    """Seconds per stage, summed over units (and over workers by ``add``). Stages overlap when prefetching."""

    decode: float = 0.0
    resize: float = 0.0
    encode: float = 0.0
    write: float = 0.0
    wait: float = 0.0  # the encode loop waiting for the next unit's frames

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


def _decode_process(args: ReaderArgs, plan_path: str, units: list[int], out, finished, parent: int) -> None:
    """Entry point of a decode process: decode ``units`` in order into ``out`` (a bounded queue), then wait for
    ``finished``: the frames travel as shared-memory handles that this process must serve until they are taken."""
    import json

    torch.set_num_threads(max(1, args.threads))  # used by a CPU resize only
    with open(plan_path) as f:
        plan = json.load(f)
    reader = args.reader(plan)

    def put(item) -> bool:
        while True:
            try:
                out.put(item, timeout=_POLL)
                return True
            except queue.Full:
                if os.getppid() != parent:  # the worker is gone: nobody will read this
                    return False

    try:
        for u in units:
            if not put(("unit", reader.load(u))):
                return
    except BaseException as e:  # noqa: BLE001 -- reported to the worker, which raises it
        put(("error", e if isinstance(e, PrepareError) else RuntimeError(f"decode process: {e!r}")))
    finally:
        reader.close()
    while not finished.wait(_POLL) and os.getppid() == parent:
        pass


class _Processes:
    """``decode_workers`` spawned decode processes; ``get(u)`` returns unit ``u``'s ``UnitFrames`` in order."""

    def __init__(self, args: ReaderArgs, plan: dict, plan_path: str, units: list[int], count: int, depth: int):
        import torch.multiprocessing as mp

        ctx = mp.get_context("spawn")
        parts: list[list[int]] = [[] for _ in range(count)]
        self.owner: dict[int, int] = {}
        for k, seg in enumerate(segments(plan, units)):
            parts[k % count] += seg
            self.owner.update({u: k % count for u in seg})
        self.queues = [ctx.Queue(maxsize=max(1, depth)) for _ in parts]
        self.finished = ctx.Event()
        self.procs = [
            ctx.Process(
                target=_decode_process, daemon=True, args=(args, plan_path, part, q, self.finished, os.getpid())
            )
            for part, q in zip(parts, self.queues)
            if part
        ]
        self.queues = [q for part, q in zip(parts, self.queues) if part]
        index = {old: new for new, old in enumerate(k for k, part in enumerate(parts) if part)}
        self.owner = {u: index[k] for u, k in self.owner.items()}
        for p in self.procs:
            p.start()

    def get(self, unit: int) -> UnitFrames:
        k = self.owner[unit]
        while True:
            try:
                kind, item = self.queues[k].get(timeout=_POLL)
            except queue.Empty:
                if not self.procs[k].is_alive():
                    raise RuntimeError(
                        f"a decode process died (exit code {self.procs[k].exitcode}); rerun to resume"
                    ) from None
                continue
            if kind == "error":
                raise item
            if item.unit != unit:  # cannot happen: each process decodes its units in order
                raise RuntimeError(f"decode process sent unit {item.unit}, expected {unit}")
            return item

    def close(self) -> None:
        self.finished.set()
        for p in self.procs:
            p.join(timeout=2 * _POLL)
            if p.is_alive():  # still decoding: an error or an interrupt ended the run early
                p.terminate()
                p.join()


def units_frames(
    args: ReaderArgs,
    plan: dict,
    plan_path: str,
    units: list[int],
    resolution: tuple[int, int],
    device,
    prefetch: int,
    decode_workers: int,
    stats: Stats,
) -> Iterator[tuple[UnitFrames, torch.Tensor | None]]:
    """``(UnitFrames, clips [B, T, H, W, 3] uint8 on device or None)`` for ``units`` in order (see the module
    docstring). Closing the generator stops every thread and process it started."""
    cuda = torch.device(device).type == "cuda"
    if prefetch <= 0:  # sequential: the reference path
        reader = args.reader(plan)
        try:
            for u in units:
                frames = reader.load(u)
                stats.decode += frames.seconds
                start = time.perf_counter()
                clips = unit_clips(frames, resolution, device)
                if cuda:
                    torch.cuda.synchronize(device)
                stats.resize += time.perf_counter() - start
                yield frames, clips
        finally:
            reader.close()
        return

    done = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    procs = _Processes(args, plan, plan_path, units, decode_workers, prefetch) if decode_workers > 0 else None

    def produce() -> None:
        reader = None if procs is not None else args.reader(plan)
        stream = torch.cuda.Stream(device) if cuda else None
        try:
            for u in units:
                frames = procs.get(u) if procs is not None else reader.load(u)
                stats.decode += frames.seconds
                start = time.perf_counter()
                if stream is not None:  # resize beside the encoder's kernels, not behind them
                    with torch.cuda.stream(stream):
                        clips = unit_clips(frames, resolution, device)
                    stream.synchronize()
                else:
                    clips = unit_clips(frames, resolution, device)
                stats.resize += time.perf_counter() - start
                if not _put(done, ("unit", (frames, clips)), stop):
                    return
        except BaseException as e:  # noqa: BLE001 -- re-raised by the encode loop
            _put(done, ("error", e), stop)
        finally:
            if reader is not None:
                reader.close()

    thread = threading.Thread(target=produce, name="prepare-data-decode", daemon=True)
    thread.start()
    try:
        for _ in units:
            start = time.perf_counter()
            kind, item = done.get()
            stats.wait += time.perf_counter() - start
            if kind == "error":
                raise item
            frames, clips = item
            if clips is not None and cuda:  # made on the side stream, used on the current one
                clips.record_stream(torch.cuda.current_stream(device))
            yield frames, clips
    finally:
        stop.set()
        if procs is not None:  # first, so that a producer waiting on a process sees it gone
            procs.close()
        thread.join()


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False
