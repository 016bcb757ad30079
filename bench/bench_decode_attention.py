"""Decode attention alone, per call: the four modes of ``McoreEngine.step`` at the 4B's shapes.

One query position per sequence (32 heads, 8 KV groups, head_dim 128, bf16) against a cache of 12,800 slots filled up
to ``pos = length - 1`` and attended over the length's 1,024-slot bucket (as the bucketed CUDA-graph decode does).
Each of 16 layers has a cache of its own (one layer's filled cache fits the H200's 50 MB L2 at batch 1, so reusing
one would flatter every mode). Per mode: microseconds per call, eager (launched from Python) and replayed from one
CUDA graph holding the 16 layers' calls (as in the decode step); the effective bandwidth of the filled K/V read in the
graph; the max |error| against the fp32 reference.

    sdpa    F.scaled_dot_product_attention with the position mask and enable_gqa (the math path: K/V copied per head)
    gemm    two batched GEMMs per KV group, fp32 softmax (McoreEngine._gemm_attention)
    flex    compiled flex_attention, position mask as a score modification (McoreEngine._flex_attention)
    triton  hand-written split-K flash-decoding (decode_kernel.decode_attention)
    triton-w  the same as the decode step calls it: this step's K/V written into slot pos by the kernel,
            programmatic dependent launch (Hopper+); triton-wo: the write alone, triton-p: PDL alone
    fa4     FlashAttention-4's forward (optional ``flash-attn-4`` package, Hopper path): q as [B, 1, heads, hd], the
            cache as a [B, L, groups, hd] view, ``seqused_k = pos + 1`` on the device, GQA heads packed into one
            tile; ``fa4`` lets its heuristic pick the KV splits, ``fa4-sN`` forces N (its combine kernel included)

    python bench/bench_decode_attention.py                       # batch 1,4,8 x length 6144,9000,12800
    python bench/bench_decode_attention.py --batch 1 --sweep     # also the Triton kernel's tile/split/warp choices
    python bench/bench_decode_attention.py --smoke               # CPU, tiny shapes, Triton in its interpreter
    python bench/bench_decode_attention.py --batch 1 --bucket 0 --modes triton,triton-wo,triton-w
                                                                 # as generate attends (the whole cache)
"""

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cuda_timing import burst_ms  # noqa: E402

MODES = ("sdpa", "gemm", "flex", "triton")


class _Attn:
    """What ``McoreEngine``'s attention methods read from ``self``."""

    scale = None


def attention_fn(mode: str, attend: int, device):
    """``fn(q, k, v, pos, visible) -> [1, B, heads * hd]`` for one mode, the cache sliced to ``attend`` slots."""
    from nemo_cosmos_ar.inference import decode_kernel
    from nemo_cosmos_ar.inference.engine import McoreEngine

    eng = _Attn()
    if mode == "sdpa":

        def fn(q, k, v, pos, visible):
            o = F.scaled_dot_product_attention(
                q.permute(1, 2, 0, 3), k[:, :, :attend], v[:, :, :attend], attn_mask=visible, enable_gqa=True
            )
            return o.permute(2, 0, 1, 3).reshape(1, o.shape[0], -1)

    elif mode == "gemm":

        def fn(q, k, v, pos, visible):
            return McoreEngine._gemm_attention(eng, q, k[:, :, :attend], v[:, :, :attend], visible)

    elif mode == "flex":

        def fn(q, k, v, pos, visible):
            return McoreEngine._flex_attention(eng, q, k[:, :, :attend], v[:, :, :attend], pos)

    elif mode.startswith("fa4"):
        from flash_attn.cute.interface import _flash_attn_fwd

        splits = int(mode[5:]) if mode.startswith("fa4-s") else 0  # 0: FA4's own split heuristic

        used_of: dict = {}  # one int32 `pos + 1` per pos tensor, as a decode step would keep one for all its layers

        def fn(q, k, v, pos, visible):
            used = used_of.get(id(pos))
            if used is None:
                used = used_of[id(pos)] = (pos + 1).to(torch.int32).expand(q.shape[1]).contiguous()
            out = _flash_attn_fwd(
                q.transpose(0, 1), k[:, :, :attend].transpose(1, 2), v[:, :, :attend].transpose(1, 2),
                seqused_k=used, num_splits=splits, pack_gqa=True,
            )[0]  # fmt: skip
            return out.reshape(1, q.shape[1], -1)

    else:
        new = _new_kv(mode)

        def fn(q, k, v, pos, visible, **kw):
            return decode_kernel.decode_attention(q, k[:, :, :attend], v[:, :, :attend], pos, **new(q, k), **kw)

    return fn


def _new_kv(mode: str):
    """``-w`` modes: the step's K/V (one random row per group, made once per cache) and PDL, as the decode step
    passes them; the slot written holds the same kind of values, so the timing does not drift. ``-wo``: the write
    alone, ``-p``: PDL alone."""
    write, pdl = mode.endswith(("-w", "-wo")), mode.endswith(("-w", "-p"))
    made: dict = {}

    def new(q, k):
        kw = {"pdl": True} if pdl and q.is_cuda and torch.cuda.get_device_capability()[0] >= 9 else {}
        if write:
            if id(k) not in made:
                b, g, _, hd = k.shape
                made[id(k)] = (torch.randn(b, g, hd, device=k.device, dtype=k.dtype),) * 2
            kw["k_new"], kw["v_new"] = made[id(k)]
        return kw

    return new


def bind(fn, *args, **kw):
    return lambda: fn(*args, **kw)


def timed(calls, iters: int, cuda: bool, graph: bool) -> float:
    """Microseconds per call of ``calls`` (a list of no-argument callables, run in turn), eager or in one graph."""
    for c in calls:  # warm-up (compiles flex and Triton before any capture)
        c()
    run = lambda: [c() for c in calls]  # noqa: E731
    if graph:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            run()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            run()
        run = g.replay
    run()
    if cuda:
        ms = burst_ms(run, iters, warmup=0) * iters
    else:
        t = time.perf_counter()
        for _ in range(iters):
            run()
        ms = 1000 * (time.perf_counter() - t)
    return 1000 * ms / (iters * len(calls))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", default="1,4,8")
    ap.add_argument("--lengths", default="6144,9000,12800", help="filled slots (pos + 1)")
    ap.add_argument("--cache", type=int, default=12800, help="slots of the static cache")
    ap.add_argument(
        "--bucket", type=int, default=1024, help="attend = the filled length rounded up to this; 0: the whole cache"
    )
    ap.add_argument("--layers", type=int, default=16, help="calls per CUDA graph, each on a cache of its own")
    ap.add_argument("--iters", type=int, default=50, help="graph replays (eager: rounds of --layers calls)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--sweep", action="store_true", help="also time the Triton kernel's block_n/waves/warps choices")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny shapes (Triton in its interpreter)")
    ap.add_argument(
        "--best-out",
        help="with --sweep: write the choice with the least summed time over the lengths at the first batch size "
        "as 'block_n,waves,warps,stages' (bench_generate.py --attention-config reads it)",
    )
    args = ap.parse_args()
    heads, groups, hd, dtype = 32, 8, 128, torch.bfloat16
    if args.smoke:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before Triton decorates the kernels
        args.batch, args.lengths, args.cache, args.bucket, args.layers, args.iters = "1,2", "70,200", 256, 64, 2, 2
        heads, groups, hd, dtype = 4, 2, 32, torch.float32
    cuda = torch.cuda.is_available() and not args.smoke
    device = torch.device("cuda" if cuda else "cpu")
    from nemo_cosmos_ar.inference import decode_kernel

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        import triton  # noqa: F401
    except ImportError:
        if "triton" in modes:
            print("(no triton: its rows are skipped)")
            modes.remove("triton")
    rows, sweep = [], []
    for batch in (int(b) for b in args.batch.split(",")):
        g = torch.Generator(device=device).manual_seed(batch)
        shape = (batch, groups, args.cache, hd)
        caches = [
            (torch.randn(shape, generator=g, device=device, dtype=dtype), torch.randn(shape, generator=g, device=device, dtype=dtype))
            for _ in range(args.layers)
        ]  # fmt: skip
        q = torch.randn((1, batch, heads, hd), generator=g, device=device, dtype=dtype)
        for length in (int(n) for n in args.lengths.split(",")):
            attend = min(args.cache, -(-length // args.bucket) * args.bucket) if args.bucket else args.cache
            pos = torch.tensor([length - 1], device=device)
            visible = (torch.arange(attend, device=device) <= pos).view(1, 1, 1, attend)
            filled = 2 * batch * groups * length * hd * dtype.itemsize  # K and V bytes read per call
            for mode in modes:
                try:
                    fn = attention_fn(mode, attend, device)
                    calls = [bind(fn, q, k, v, pos, visible) for k, v in caches]
                    out = fn(q, *caches[0], pos, visible).float()  # (-w modes write slot pos: compare after)
                    ref = decode_kernel.decode_attention_reference(q, *caches[0], pos)
                    err = (out - ref).abs().max().item()
                    eager = timed(calls, args.iters, cuda, graph=False)
                    graph = timed(calls, args.iters, cuda, graph=True) if cuda else float("nan")
                except Exception as exc:  # a mode that fails at a shape is a row, not the end of the table
                    rows.append((batch, length, attend, mode, f"failed: {str(exc).splitlines()[0][:120]}"))
                    continue
                best = graph if cuda else eager
                rows.append(
                    (batch, length, attend, mode, f"{eager:.1f} | {graph:.1f} | {filled / best / 1e3:.0f} | {err:.2e}")
                )
                if mode == "triton" and args.sweep:
                    choices = itertools.product((32, 64, 128), (1, 2, 4, 8), (4, 8), (2, 3, 4))
                    if args.smoke:  # the interpreter is slow: two choices check the table
                        choices = ((32, 2, 4, 2), (64, 1, 4, 2))
                    for bn, waves, warps, stages in choices:
                        kw = dict(block_n=bn, waves=waves, num_warps=warps, num_stages=stages)
                        tcalls = [bind(fn, q, k, v, pos, visible, **kw) for k, v in caches]
                        try:
                            us = timed(tcalls, args.iters, cuda, graph=cuda)
                        except Exception:  # e.g. out of shared memory at the largest tiles
                            continue
                        s = decode_kernel.num_splits(batch, groups, attend, decode_kernel._sm_count(device), bn, waves)
                        sweep.append((batch, length, bn, waves, warps, stages, s[0], us, filled / us / 1e3))
            del visible
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(
        f"\ndecode attention, {heads} heads / {groups} KV groups, head_dim {hd}, {dtype}, cache {args.cache}, {name}\n"
    )
    print(
        "| batch | filled | attend | mode | eager us/call | graph us/call | GB/s (filled K/V) | max abs err vs fp32 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for b, n, a, mode, rest in rows:
        print(f"| {b} | {n} | {a} | {mode} | {rest} |")
    if sweep:
        print("\nTriton kernel choices (graph us/call):\n")
        print("| batch | filled | block_n | waves | warps | stages | splits | us/call | GB/s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for b, n, bn, w, nw, st, s, us, gbs in sorted(sweep, key=lambda r: (r[0], r[1], r[7])):
            print(f"| {b} | {n} | {bn} | {w} | {nw} | {st} | {s} | {us:.1f} | {gbs:.0f} |")
        first = sweep[0][0]
        lengths = {r[1] for r in sweep if r[0] == first}
        totals: dict[tuple, list[float]] = {}
        for b, _n, bn, w, nw, st, _, us, _ in sweep:
            if b == first:
                totals.setdefault((bn, w, nw, st), []).append(us)
        whole = {c: sum(t) for c, t in totals.items() if len(t) == len(lengths)}
        best = min(whole, key=whole.get)
        d = decode_kernel.DEFAULTS
        now = (d["block_n"], d["waves"], d["num_warps"], d["num_stages"])
        base = whole.get(now)
        print(
            f"\nbatch {first}, summed over {len(lengths)} lengths: best block_n={best[0]} waves={best[1]} warps={best[2]} "
            f"stages={best[3]}: {whole[best]:.1f} us; the defaults {now}: "
            + (f"{base:.1f} us" if base is not None else "not in the sweep")
        )
        if args.best_out:
            Path(args.best_out).write_text(",".join(str(x) for x in best))


if __name__ == "__main__":
    main()
