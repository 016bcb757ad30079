"""CUDA-event timing shared by the bench scripts (imported as ``cuda_timing``: a script's own folder is on its path)."""

from __future__ import annotations

import statistics

import torch


def median_ms(fn, reps: int = 10, warmup: int = 2, before=None) -> float:
    """Median milliseconds of ``fn()`` over ``reps`` runs timed by CUDA events, after ``warmup`` untimed runs;
    ``before()`` runs ahead of each timed run, outside the timing (e.g. a barrier between ranks)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        if before is not None:
            before()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)
