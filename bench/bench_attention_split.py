"""The DiT's guided attention as one batch-2 call or as two batch-1 calls (issue 13, tenth session).

On one GPU the diffusion decoder runs the conditional and unconditional passes of every guided step as one batch of 2
(the GEMMs gain from it). The fifth-session table of bf16 attention kernels (BENCHMARKS.md, "bf16 attention for the
DiT") measured cuDNN at 10.2-11.2 ms for batch 1 and 22.0-22.4 ms for batch 2 at [b, 20,480, 32, 128]: if batch 1 is
really ~10.2 ms, two batch-1 calls would save ~1.6 ms a block, 28 blocks x 15 steps ~0.7 s a video. This measures
both ways in one process, interleaved, with the decoder's own layout (``[b, s, h, d]`` tensors seen as ``[b, h, s,
d]``, the output made ``[b, s, h*d]``), and checks whether the two ways give equal outputs.

Measured on the H200 (call a12): 22.77 ms for one batch-2 call against 22.75 ms for two batch-1 calls, outputs
bit-equal; no gain, so the decoder keeps its one call.

Usage: ``python3 bench/bench_attention_split.py`` (H200; ``--smoke`` on CPU with a small shape).
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F


def one_call(q, k, v):
    b, s, h, d = q.shape
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2).reshape(b, s, h * d)


def split_calls(q, k, v):
    b, s, h, d = q.shape
    res = torch.empty(b, s, h * d, dtype=q.dtype, device=q.device)
    for i in range(b):
        out = F.scaled_dot_product_attention(
            q[i : i + 1].transpose(1, 2), k[i : i + 1].transpose(1, 2), v[i : i + 1].transpose(1, 2)
        )
        res[i : i + 1].view(1, s, h, d).copy_(out.transpose(1, 2))
    return res


def timed(fn, args, iters: int, cuda: bool) -> float:
    """ms per call over ``iters`` calls."""
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn(*args)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / iters
    import time

    t = time.perf_counter()
    for _ in range(iters):
        fn(*args)
    return (time.perf_counter() - t) * 1e3 / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, [2, 256, 4, 32]")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.smoke
    dev, dt = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    s, h, d = (20480, 32, 128) if cuda else (256, 4, 32)
    g = torch.Generator(dev).manual_seed(0)
    q, k, v = (torch.randn(2, s, h, d, device=dev, dtype=dt, generator=g) for _ in range(3))
    a, b = one_call(q, k, v), split_calls(q, k, v)
    a1 = one_call(q[:1], k[:1], v[:1])
    flops = 4 * s * s * h * d  # per sample: QK^T and PV
    print(f"# {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, [b, {s}, {h}, {d}] {dt}")
    print(
        f"# outputs equal: batch-2 call vs two batch-1 calls {torch.equal(a, b)} (max |diff| "
        f"{(a.float() - b.float()).abs().max().item():.3g}); row 0 of the batch-2 call vs a batch-1 call "
        f"{torch.equal(a[:1], a1)}"
    )
    for _ in range(3):  # warm-up: kernel selection, caches
        one_call(q, k, v), split_calls(q, k, v), one_call(q[:1], k[:1], v[:1])
    rows = {"batch 2, one call": [], "batch 2, two batch-1 calls": [], "batch 1, one call (x2)": []}
    for _ in range(args.rounds):
        rows["batch 2, one call"].append(timed(one_call, (q, k, v), args.iters, cuda))
        rows["batch 2, two batch-1 calls"].append(timed(split_calls, (q, k, v), args.iters, cuda))
        rows["batch 1, one call (x2)"].append(2 * timed(one_call, (q[:1], k[:1], v[:1]), args.iters, cuda))
    print("\n| way | ms for both samples, median (min-max) of rounds | TFLOP/s |\n|---|---:|---:|")
    for name, ms in rows.items():
        med = statistics.median(ms)
        print(f"| {name} | {med:.2f} ({min(ms):.2f}-{max(ms):.2f}) | {2 * flops / med / 1e9:.0f} |")
    base = statistics.median(rows["batch 2, one call"])
    split = statistics.median(rows["batch 2, two batch-1 calls"])
    print(
        f"\n# split - one call: {split - base:+.2f} ms a block, x 28 blocks x 15 steps = {(split - base) * 0.42:+.2f} s"
    )


if __name__ == "__main__":
    main()
