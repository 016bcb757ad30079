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


def burst_ms(fn, reps: int = 10, warmup: int = 1) -> float:
    """Mean milliseconds of ``fn()`` over ``reps`` back-to-back runs between two CUDA events (no gaps between the
    runs, unlike ``median_ms``), after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / reps


def attention_case(b: int, s: int, heads: int = 32, head_dim: int = 128, ref_queries: int = 1024, seed: int = 0):
    """Random bf16 ``q, k, v [b, s, heads, head_dim]`` on the GPU, the FLOPs of one non-causal attention over them,
    and ``err(out)``: the relative L2 of an output ``[b, s, heads, head_dim]`` against fp32 attention over the first
    ``ref_queries`` queries (the attention benches' error column)."""
    import torch.nn.functional as F

    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k, v = (torch.randn(b, s, heads, head_dim, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(3))
    ref = F.scaled_dot_product_attention(
        q[:, :ref_queries].transpose(1, 2).float(), k.transpose(1, 2).float(), v.transpose(1, 2).float()
    ).transpose(1, 2)

    def err(out: torch.Tensor) -> float:
        return ((out[:, :ref_queries].float() - ref).norm() / ref.norm()).item()

    return q, k, v, 4 * b * s * s * heads * head_dim, err
