"""The speculative step's two parts besides the products, alone (issue 13): the verify attention's launch choices
and where the accept/reject's time goes.

1. ``verify_kernel.verify_attention`` at the 4B's shapes (32 heads, 8 KV groups, 128 dims; M = 16 / 32 / 64 rows
   of positions; the window ending at 5,120 or 12,700 filled slots of a 12,800-slot cache) for each launch choice
   (rows per block, warps, waves), in us per call (16 calls per CUDA graph, one per layer as a forward makes them).
2. The accept/reject in torch ops (``sampling.sampling_probs`` + ``speculative.coupled_resample`` + the bonus race,
   as ``speculative._Window.advance`` runs them) over M rows of 64,000 bf16 logits: its CUDA kernels by total time
   (torch.profiler, 20 calls), to see which op the 0.36 ms at M = 17 is.

    python bench/bench_verify_parts.py                 # on a GPU
    TRITON_INTERPRET=1 python bench/bench_verify_parts.py --smoke   # CPU rehearsal: tiny shapes, wall-clock timing
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _time(fn, calls: int, smoke: bool) -> float:
    """Seconds per call of ``fn(i)``: CUDA-graph replays on a GPU, a plain loop in the smoke run."""
    if smoke:
        t = time.perf_counter()
        for i in range(calls):
            fn(i)
        return (time.perf_counter() - t) / calls
    from bench.bench_gemv import graph_time

    return graph_time(fn, calls)


def sweep_attention(smoke: bool, given: str = "", ms_given: str = "") -> None:
    from nemo_cosmos_ar.inference import verify_kernel as vk

    dev = torch.device("cpu" if smoke else "cuda")
    heads, groups, hd, cache = (8, 2, 32, 160) if smoke else (32, 8, 128, 12800)
    layers = 2 if smoke else 16
    ks = [torch.randn(groups, cache, hd, device=dev).bfloat16() for _ in range(layers)]
    vs = [torch.randn(groups, cache, hd, device=dev).bfloat16() for _ in range(layers)]
    # the windows generate suggests (L = 15 / 31 / 63: M = 16 / 32 / 64, whole 64-row blocks)
    ms = (5,) if smoke else tuple(int(m) for m in (ms_given or "16,32,64").split(","))
    filled = (100,) if smoke else (5120, 12700)
    # a26 swept rows per block {all, 64, 32} x warps {4, 8} x waves {2, 4, 8} at M = 17 / 33 / 65 (68 / 132 / 260
    # rows: "all" padded them), a27 waves {1, 1.5, 2} x K tile {32, 64, 128} x stages {2, 3}: 64 rows, 4 warps,
    # 2 waves, 64-slot tiles, 3 stages. At aligned M a block of 128 rows (0 = all, capped at 128) pads nothing: around
    # the default again, with 128-row blocks on 4 and 8 warps (a42: the default won again). a43 tried the splits'
    # combine in the split kernel's last program (one launch less): 1.1-2.7x slower, removed.
    choices = list(itertools.product((64, 0), (4, 8), (1.5, 2.0, 3.0), (64,), (3,)))
    if given:  # --choices "block_h,warps,waves,block_n,stages;..."
        choices = [tuple(float(x) if i == 2 else int(x) for i, x in enumerate(c.split(","))) for c in given.split(";")]
    if smoke:
        choices = choices[:2]
    print("| M | filled slots | rows per block | warps | waves | K tile | stages | us a call |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m, n in itertools.product(ms, filled):
        q = torch.randn(m, heads, hd, device=dev).bfloat16()
        pos = torch.tensor([n - m], device=dev)
        attend = min(cache, 512 * -(-n // 512))  # the decode's 512-slot bucket
        best = None
        for block_h, warps, waves, block_n, stages in choices:
            row = f"| {m} | {n} | {block_h or 'all'} | {warps} | {waves:g} | {block_n} | {stages} |"

            def call(i, a=(q, pos, attend), o=(block_h, warps, waves, block_n, stages)):
                k, v = ks[i][:, : a[2]], vs[i][:, : a[2]]
                return vk.verify_attention(
                    a[0], k, v, a[1], block_h=o[0], num_warps=o[1], waves=o[2], block_n=o[3], num_stages=o[4]
                )

            try:
                us = 1e6 * _time(call, layers, smoke)
            except Exception as err:  # noqa: BLE001 -- a launch choice that does not compile is a row, not a stop
                print(f"{row} failed: {type(err).__name__} |")
                continue
            best = min(best, (us, row)) if best else (us, row)
            print(f"{row} {us:.1f} |", flush=True)
        if best:
            print(f"best at M = {m}, {n} slots: {best[0]:.1f} us ({best[1]}; default {vk.DEFAULTS})", flush=True)


def profile_accept(smoke: bool) -> None:
    from torch.profiler import ProfilerActivity, profile

    from nemo_cosmos_ar.inference import speculative
    from nemo_cosmos_ar.inference.sampling import SamplingConfig, exponential_draw, sampling_probs

    dev = torch.device("cpu" if smoke else "cuda")
    vocab = 1000 if smoke else 64000
    print("\n| M | top-p distribution | accept/reject alone, us (CUDA graph) |")
    print("|---:|---|---:|")
    for m in (3,) if smoke else (16, 32, 64):
        L = m - 1
        logits = (3 * torch.randn(m, vocab, device=dev)).bfloat16()
        q = torch.softmax(torch.randn(L, vocab, device=dev), -1)
        drafts = torch.randint(0, vocab, (L,), device=dev)
        # "auto": nucleus_kernel.nucleus_probs on CUDA (the nucleus's edge by a search, no sort); "torch": the ops
        for kernel in ("torch", "auto"):
            sampling = SamplingConfig(kernel=kernel)

            def once(i=0, logits=logits, q=q, drafts=drafts, L=L, sampling=sampling):
                p = sampling_probs(logits, sampling)
                u = torch.rand(L, device=dev)
                e = exponential_draw(L + 1, vocab, None, dev)
                drawn, _ = speculative.coupled_resample(p[:L], q, drafts, u, e[:L])
                return torch.cat([drawn, speculative.race(p[L:], e[L:])])

            once()
            print(f"| {m} | {kernel} | {1e6 * _time(once, 1, smoke):.1f} |", flush=True)
            acts = [ProfilerActivity.CPU] if smoke else [ProfilerActivity.CPU, ProfilerActivity.CUDA]
            with profile(activities=acts) as prof:
                for _ in range(20):
                    once()
                if not smoke:
                    torch.cuda.synchronize()
            key = "self_cpu_time_total" if smoke else "self_device_time_total"
            print(f"\naccept/reject at M = {m}, {kernel} (20 calls; {key}):")
            print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=60))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CPU rehearsal (TRITON_INTERPRET=1): tiny shapes")
    ap.add_argument("--parts", default="attention,accept")
    ap.add_argument("--choices", default="", help='attention launch choices "block_h,warps,waves,block_n,stages;..."')
    ap.add_argument("--rows", default="", help="attention M values, e.g. 16,32,64")
    args = ap.parse_args()
    parts = args.parts.split(",")
    if "attention" in parts:
        sweep_attention(args.smoke, args.choices, args.rows)
    if "accept" in parts:
        profile_accept(args.smoke)


if __name__ == "__main__":
    main()
