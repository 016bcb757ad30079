"""Writing a generated video's files, and batch mode's writer thread.

``save_outputs`` writes one job's MP4 and, when asked, its token grid: both or neither, each atomically, and the
folders it had to create are removed again if it fails. It touches only the CPU (the frames arrive as uint8 on the
host), so batch mode runs it on a thread (``BackgroundWriter``): the H.264 encode of video k (1.0-1.8 s for the
random-weight noise of the benchmarks on the H200, ~0.3 s for a smooth clip) then runs while video k+1 is encoded,
generated and decoded on the GPU, instead of between them.

``EarlyEncode`` does the same for one video and its guardrails: the MP4 is encoded on a thread while the safety
filter and the face detector run on the same frames. Most videos pass unchanged (no face found), and then those
bytes are written; a blurred video is encoded again, an unsafe one is dropped.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch

from nemo_cosmos_ar import video_io
from nemo_cosmos_ar.inference.options import Job
from nemo_cosmos_ar.runtime import Background


def host_frames(video: torch.Tensor, layout: str) -> torch.Tensor:
    """``[T, H, W, 3]`` uint8 on the CPU, the frames ``video_io.write_video`` would write (a float clip on a GPU is
    clamped and rounded there, so only the uint8 frames cross to the host)."""
    return torch.from_numpy(video_io.to_uint8_frames(video, layout))


class EarlyEncode:
    """The MP4 bytes of ``frames`` (uint8 ``[T, H, W, 3]``, read only), encoded on a ``runtime.Background`` thread
    from construction."""

    def __init__(self, frames: torch.Tensor, fps: float) -> None:
        self.frames = frames
        self._job = Background(lambda: video_io.encode_mp4(frames, fps, layout="THWC"), "cpu", "cosmos-ar-early-encode")

    def take(self, final: torch.Tensor) -> bytes | None:
        """The bytes, when ``final`` (what the guardrails returned) is the frames encoded; else None (the caller
        encodes ``final``). An encoding error is None too: the normal write then raises it with the path."""
        if final is not self.frames and not (final.shape == self.frames.shape and torch.equal(final, self.frames)):
            return None
        return None if self._job.exception() is not None else self._job.result()

    def close(self) -> None:
        """Wait for the thread (a process must not exit with it inside the encoder)."""
        self._job.thread.join()


def save_outputs(
    job: Job, tokens: torch.Tensor, frames: torch.Tensor, fps: float, overwrite: bool, encoded: bytes | None = None
) -> None:
    """Write ``job.output`` (the MP4 of ``frames``, uint8 ``[T, H, W, 3]``; ``encoded``: those bytes, already
    encoded by ``EarlyEncode``) and, if ``job.save_tokens`` is set, the grid ``tokens``: the tokens to a temporary
    file first, then the video (atomic itself), then the tokens renamed, so a failure leaves neither.

    Raises:
        FileExistsError: ``job.output`` appeared since the run's checks and ``overwrite`` is off.
        OSError / ValueError: the write failed (full disk, an unwritable folder, frames the encoder refuses).
    """
    if job.output.exists() and not overwrite:  # it may have appeared while we were generating
        raise FileExistsError(f"{job.output} already exists; pass --overwrite to replace it")
    created = missing_parents([job.output] + ([job.save_tokens] if job.save_tokens else []))
    tmp = None
    try:
        if job.save_tokens is not None:
            job.save_tokens.parent.mkdir(parents=True, exist_ok=True)
            tmp = job.save_tokens.with_name(f".{job.save_tokens.name}.{os.getpid()}.tmp")
            torch.save(tokens.cpu(), tmp)
        if encoded is not None:
            video_io.write_bytes(job.output, encoded)
        else:
            video_io.write_video(job.output, frames, fps=fps, layout="THWC")
        if tmp is not None:
            os.replace(tmp, job.save_tokens)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        remove_empty(created)
        raise


def missing_parents(paths: list[Path]) -> list[Path]:
    """The folders above ``paths`` that do not exist yet (deepest first per path)."""
    out = []
    for p in paths:
        parent = Path(os.path.abspath(p)).parent
        while not parent.exists():
            out.append(parent)
            parent = parent.parent
    return out


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a run created for its outputs if they stayed empty (no stray folders on failure)."""
    for f in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        try:
            f.rmdir()
        except OSError:
            pass


class BackgroundWriter:
    """One thread that runs writes in the order they were submitted, while the caller goes on to the next video.

    ``submit(job, fn)`` queues ``fn()``; with ``depth`` writes already waiting it first waits for the oldest, so a
    slow disk bounds the frames held in memory (65 MB a 33-frame 640x1024 video) instead of letting them pile up.
    ``finished()`` hands back the writes done so far, ``close()`` waits for all of them: each as
    ``(job, error or None, seconds)``, in submission order. The caller reports errors; a write's failure never
    stops the others.
    """

    def __init__(self, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cosmos-ar-writer")
        self._pending: deque[tuple[Job, Future]] = deque()

    @staticmethod
    def _timed(fn: Callable[[], None]) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    def submit(self, job: Job, fn: Callable[[], None]) -> list[tuple[Job, BaseException | None, float]]:
        """Queue ``fn``; returns the writes that finished meanwhile (see ``finished``), waiting for the oldest
        first when ``depth`` are already queued."""
        done = []
        while len(self._pending) >= self.depth:
            done.append(self._take())
        done += self.finished()
        self._pending.append((job, self._pool.submit(self._timed, fn)))
        return done

    def _take(self) -> tuple[Job, BaseException | None, float]:
        job, fut = self._pending.popleft()
        err = fut.exception()  # waits
        return job, err, (0.0 if err is not None else fut.result())

    def finished(self) -> list[tuple[Job, BaseException | None, float]]:
        """The writes done so far, oldest first, stopping at the first still running (order is kept)."""
        done = []
        while self._pending and self._pending[0][1].done():
            done.append(self._take())
        return done

    def close(self) -> list[tuple[Job, BaseException | None, float]]:
        """Wait for every queued write; returns them all (see ``finished``) and stops the thread."""
        done = []
        while self._pending:
            done.append(self._take())
        self._pool.shutdown(wait=True)
        return done
