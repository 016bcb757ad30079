"""The DiT's self-attention on FlashAttention-4 at other tile shapes (issue 13): a sweep for the next lever.

The DiT's attention is ~40% of its 20 s a video (FA4 at ~680 TFLOP/s; BENCHMARKS.md, issue 13), the largest part of
the whole generate that is not already at a library's ceiling by measurement: FA4's Hopper forward runs one
configuration for head dim 128 (128 x 128 tiles, P@V from registers, intra-warpgroup overlap; ``interface.py``
``_tile_size_fwd_sm90``, tuned on an H100 SXM), where FlashAttention-3's C++ kernel uses 128 x 176 for non-causal
attention. This times FA4's forward at the DiT's shapes (bf16, [B, 20,480, 32, 128], no mask: B = 2 with the
guidance passes batched, 1 when split) for several ``tile_mn`` / ``mma_pv_is_rs`` / ``intra_wg_overlap`` choices
through the package's ``_flash_attn_fwd`` (its public ``flash_attn_func`` takes none of them), interleaved rounds,
and prints each one's median ms, TFLOP/s and max difference from the default's output (the same maths: only the
order of the softmax's partial sums changes).

    PYTHONPATH=<site with flash_attn.cute> python bench/bench_fa4_tiles.py
"""

from __future__ import annotations

import argparse
import statistics
import time
import traceback

import torch
from cuda_timing import burst_ms

CHOICES = [  # (tile_m, tile_n, mma_pv_is_rs, intra_wg_overlap); the first is FA4's default for head dim 128
    (128, 128, True, True),
    (128, 144, True, True),
    (128, 160, True, True),
    (128, 176, True, True),
    (128, 192, True, True),
    (128, 128, False, True),
    (128, 176, False, True),
    (128, 128, True, False),
    (192, 128, False, True),
]


def sweep(b: int, s: int, rounds: int, reps: int, gen: torch.Generator) -> None:
    """One table: every choice at batch ``b`` (compiled first, then timed in interleaved rounds)."""
    from flash_attn.cute.interface import _flash_attn_fwd

    heads, hd = 32, 128
    q, k, v = (torch.randn(b, s, heads, hd, device="cuda", generator=gen).bfloat16() for _ in range(3))
    flops = 4 * b * heads * s * s * hd
    runs, ref = {}, None
    for c in CHOICES:

        def call(c=c):
            return _flash_attn_fwd(q, k, v, tile_mn=c[:2], mma_pv_is_rs=c[2], intra_wg_overlap=c[3])[0]

        t = time.perf_counter()
        try:
            out = call()
            torch.cuda.synchronize()
        except Exception:  # noqa: BLE001 -- a choice the kernel refuses: report it, try the next
            print(f"B={b} {c}: refused\n" + "".join(traceback.format_exc().splitlines(True)[-3:]), flush=True)
            continue
        print(f"  (B={b} {c}: first call incl. compile {time.perf_counter() - t:.1f} s)", flush=True)
        ref = out.float() if ref is None else ref
        runs[c] = (call, [], (out.float() - ref).abs().max().item())
    for _ in range(rounds):  # interleaved, so clocks and heat weigh on every choice alike
        for call, times, _ in runs.values():
            times.append(burst_ms(call, reps, warmup=0))
    print(f"\n| B = {b}: tile_m x tile_n, P@V from registers, intra-WG overlap | median ms | TFLOP/s | max diff |")
    print("|---|---:|---:|---:|")
    for (tm, tn, rs, ol), (_, times, diff) in runs.items():
        ms = statistics.median(times)
        print(f"| {tm} x {tn}, {rs}, {ol} | {ms:.3f} | {flops / ms / 1e9:.0f} | {diff:.1e} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", default="2,1", help="batch sizes (2: guidance batched, 1: split)")
    ap.add_argument("--tokens", type=int, default=20480)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5, help="calls timed together in a round")
    args = ap.parse_args()
    gen = torch.Generator(device="cuda").manual_seed(0)
    for b in [int(x) for x in args.batch.split(",")]:
        sweep(b, args.tokens, args.rounds, args.reps, gen)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
