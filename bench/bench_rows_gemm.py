"""The speculative verify forward's products, ``y[M, N] = x[M, K] @ w[N, K]^T`` at M = 1 / 17 / 33 / 65 rows: cuBLAS
(``F.linear``) against the Triton rows kernel (``inference/rows_gemm.py``) and a sweep of its launch choices.

For each 4B projection shape (qkv, attention-out, fc1, fc2, output layer) one CUDA graph calls the product on 16
distinct weight copies (4 for the 524 MB output layer), so the weights stream from HBM as in a forward, not from
L2. Printed: every swept choice (us per call, TB/s of weight read), then a table with cuBLAS and the best choice
per (shape, M), the best one's max |difference| from cuBLAS's output, and per M the forward's summed cost,
16 x (qkv + proj + fc1 + fc2) + output, for cuBLAS and for the best choices, with the TB/s it amounts to.

The sweep's kernels are compiled first in ``--jobs`` worker processes (into Triton's on-disk cache, which the
timing process then loads), so the whole run takes a minute or two rather than the compiles' serial time.

    python bench/bench_rows_gemm.py                                    # H200: all shapes and M
    python bench/bench_rows_gemm.py --shapes qkv,fc2 --ms 17           # a part
    TRITON_INTERPRET=1 python bench/bench_rows_gemm.py --smoke         # CPU rehearsal: tiny shapes, wall clock
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_ar.inference import rows_gemm as R  # noqa: E402

SHAPES = {
    "qkv": (6144, 4096),
    "proj": (4096, 4096),
    "fc1": (28672, 4096),
    "fc2": (4096, 14336),
    "output": (64000, 4096),
}
SMOKE_SHAPES = {"qkv": (96, 64), "proj": (64, 64), "fc1": (160, 64), "fc2": (64, 128), "output": (200, 64)}
LAYERS = 16
SMEM_BUDGET = 192 * 1024  # of the 227 KB a block may have on the H200 (the epilogue reuses the pipeline buffers)


def choices(n: int, k: int, m: int, sms: int, smoke: bool = False) -> list[dict]:
    """The launch choices swept for one product (about 20-30). Pruned: pipeline buffers ((BLOCK_N + BLOCK_M) x
    BLOCK_K bf16 a stage) within ``SMEM_BUDGET``; weight tiles of >= 16 KB (fewer bytes in flight starve HBM); 4
    warps while the fp32 accumulator is <= 128 registers a thread, 8 once it is > 64; the K splits: the fewest two
    of 1, 2, 4, 8 that give >= 0.9 programs per SM, each split >= 2 K tiles (something to pipeline)."""
    if smoke:  # the interpreter: small tiles, both paths (direct and split-K)
        return [
            dict(block_n=bn, block_k=bk, num_warps=4, num_stages=3, split_k=s)
            for bn, bk, s in itertools.product((16, 32), (16, 32), (1, 2))
        ]
    block_m = max(16, R._next_pow2(m))
    out = []
    for bn, bk, warps, stages in itertools.product((64, 128, 256), (64, 128, 256), (4, 8), (3, 4, 5)):
        acc_regs_4 = bn * block_m / 128  # fp32 accumulator registers a thread at 4 warps
        if stages * (bn + block_m) * bk * 2 > SMEM_BUDGET or bn * bk < 8192:
            continue
        if (warps == 4 and acc_regs_4 > 128) or (warps == 8 and acc_regs_4 <= 64):
            continue
        n_tiles, k_tiles = -(-n // bn), -(-k // bk)
        splits = [s for s in (1, 2, 4, 8) if s == 1 or k_tiles // s >= 2]
        enough = [s for s in splits if n_tiles * s >= 0.9 * sms]
        for s in enough[:2] if enough else splits[-1:]:
            out.append(dict(block_n=bn, block_k=bk, num_warps=warps, num_stages=stages, split_k=s))
    return out


def label(c: dict) -> str:
    pdl = " pdl" if c.get("pdl") else ""
    return f"{c['block_n']}x{c['block_k']} w{c['num_warps']} s{c['num_stages']} split{c['split_k']}{pdl}"


def _time(fn, calls: int, smoke: bool, replays: int = 20) -> float:
    """Seconds per call of ``fn(i)``: CUDA-graph replays on a GPU, a plain loop in the smoke run."""
    if smoke:
        fn(0)
        t = time.perf_counter()
        for i in range(calls):
            fn(i)
        return (time.perf_counter() - t) / calls
    from bench.bench_gemv import graph_time

    return graph_time(fn, calls, replays)


def _warm(job: tuple) -> str | None:
    """Worker: one call of each compile-distinct choice, leaving its binary in Triton's cache (error text or None)."""
    n, k, m, cfg = job
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        x = torch.zeros(m, k, device=dev, dtype=torch.bfloat16)
        w = torch.zeros(n, k, device=dev, dtype=torch.bfloat16)
        R.rows_gemm(x, w, **cfg)
        if dev.type == "cuda":
            torch.cuda.synchronize()
    except Exception as err:  # noqa: BLE001 -- e.g. out of shared memory: reported, skipped in the sweep
        return f"{label(cfg)} (M={m}): {str(err).splitlines()[0][:120]}"
    return None


def precompile(jobs: list[tuple], workers: int, sms: int) -> None:
    """Compile every distinct kernel of the sweep in parallel processes (one job per compile key: BLOCK_M, the
    tiles, warps, stages and whether it writes partials; the shapes' ints specialise alike)."""
    keys, todo = set(), []
    for n, k, m, cfg in jobs:
        plan = R.launch_plan(m, n, k, {**R.DEFAULTS, **cfg}, sms)
        key = (
            plan["block_m"],
            cfg["block_n"],
            cfg["block_k"],
            cfg["num_warps"],
            cfg["num_stages"],
            plan["splits"] > 1,
            k % cfg["block_k"] == 0,
            bool(cfg.get("pdl")),
        )
        if key not in keys:
            keys.add(key)
            todo.append((n, k, m, cfg))
    t = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for err in pool.map(_warm, todo):
            if err:
                print(f"  compile: {err}", file=sys.stderr)
    print(f"compiled {len(todo)} kernels in {workers} processes: {time.perf_counter() - t:.1f} s\n", flush=True)


def bench_shape(name: str, n: int, k: int, ms: list[int], dev, smoke: bool, sms: int) -> dict:
    """{M: (cuBLAS s, best s, best choice, max |best - cuBLAS|)} for product ``name``; prints every choice."""
    copies = 2 if smoke else (4 if name == "output" else LAYERS)
    gen = torch.Generator(device=dev).manual_seed(0)
    ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16, generator=gen) * 0.02 for _ in range(copies)]
    tb = n * k * 2 / 1e12
    results = {}
    for m in ms:
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16, generator=gen)
        t_cublas = _time(lambda i, x=x: F.linear(x, ws[i]), copies, smoke)
        print(f"{name} M={m}: cuBLAS {t_cublas * 1e6:.1f} us ({tb / t_cublas:.2f} TB/s)", flush=True)
        best = None
        for cfg in choices(n, k, m, sms, smoke):
            try:
                t = _time(lambda i, x=x, c=cfg: R.rows_gemm(x, ws[i], **c), copies, smoke, replays=10)
            except Exception as err:  # noqa: BLE001 -- e.g. out of shared memory: skip the choice
                print(f"  {label(cfg)}: {str(err).splitlines()[0][:100]}", flush=True)
                continue
            print(f"  {label(cfg)}: {t * 1e6:.1f} us ({tb / t:.2f} TB/s)", flush=True)
            if best is None or t < best[0]:
                best = (t, cfg)
        if best is None:
            continue
        t_best, cfg = best
        t_best = _time(lambda i, x=x, c=cfg: R.rows_gemm(x, ws[i], **c), copies, smoke)  # timed again, 20 replays
        if cfg["split_k"] > 1 and not smoke:  # the reduce launched with PDL (Hopper and later)
            with_pdl = {**cfg, "pdl": True}
            t_pdl = _time(lambda i, x=x, c=with_pdl: R.rows_gemm(x, ws[i], **c), copies, smoke)
            print(f"  best {label(cfg)}: {t_best * 1e6:.1f} us; with pdl {t_pdl * 1e6:.1f} us", flush=True)
            if t_pdl < t_best:
                t_best, cfg = t_pdl, with_pdl
        y, y_cublas = R.rows_gemm(x, ws[0], **cfg), F.linear(x, ws[0])
        diff = (y.float() - y_cublas.float()).abs().max().item()
        scale = y_cublas.float().abs().max().item()
        results[m] = (t_cublas, t_best, cfg, diff, scale)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, TRITON_INTERPRET=1: tiny shapes, wall-clock timing")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--ms", default="1,17,33,65", help="rows per product")
    ap.add_argument("--jobs", type=int, default=None, help="compile processes (0: compile while timing)")
    ap.add_argument("--save-tuned", help="write the best choice per (shape, M) as JSON (rows_gemm.load_tuned reads it)")
    args = ap.parse_args()
    if args.smoke and os.environ.get("TRITON_INTERPRET") != "1":
        sys.exit("--smoke runs the kernels in Triton's interpreter: set TRITON_INTERPRET=1")
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("needs a CUDA GPU (or --smoke under TRITON_INTERPRET=1)")
    dev = torch.device("cpu" if args.smoke else "cuda")
    shapes = {s: (SMOKE_SHAPES if args.smoke else SHAPES)[s] for s in args.shapes.split(",")}
    ms = [int(m) for m in args.ms.split(",")]
    if args.smoke:
        ms = [m for m in ms if m <= 17][:2] or [1]
    sms = R._sm_count(dev)
    jobs = args.jobs if args.jobs is not None else (2 if args.smoke else min(16, os.cpu_count() or 1))
    name = "CPU (Triton interpreter, wall clock)" if args.smoke else torch.cuda.get_device_name()
    print(f"{name}, {sms} SMs; bf16 weights streamed from HBM (distinct copies per call)\n")
    if jobs:
        sweep = [(n, k, m, c) for n, k in shapes.values() for m in ms for c in choices(n, k, m, sms, args.smoke)]
        precompile(sweep, jobs, sms)
    results = {s: bench_shape(s, n, k, ms, dev, args.smoke, sms) for s, (n, k) in shapes.items()}
    print(
        "\n| shape | N x K | M | cuBLAS us (TB/s) | best rows_gemm us (TB/s) | speedup | best choice | max abs diff vs cuBLAS (max abs out) |"
    )
    print("|---|---|---:|---:|---:|---:|---|---|")
    for s, per_m in results.items():
        n, k = shapes[s]
        tb = n * k * 2 / 1e12
        for m, (t_c, t_b, cfg, diff, scale) in per_m.items():
            print(
                f"| {s} | {n} x {k} | {m} | {t_c * 1e6:.1f} ({tb / t_c:.2f}) | {t_b * 1e6:.1f} ({tb / t_b:.2f}) "
                f"| {t_c / t_b:.2f}x | {label(cfg)} | {diff:.3g} ({scale:.3g}) |"
            )
    if args.save_tuned:
        import json

        table = [
            {"n": shapes[s][0], "k": shapes[s][1], "block_m": max(16, R._next_pow2(m)), "choice": cfg}
            for s, per_m in results.items()
            for m, (_, _, cfg, _, _) in per_m.items()
        ]
        Path(args.save_tuned).write_text(json.dumps(table, indent=1))
        print(f"\nbest choices written to {args.save_tuned} ({len(table)} entries)")
    if set(shapes) == set(SHAPES):  # the forward: 16 layers of four products and the output layer
        count = {s: (1 if s == "output" else LAYERS) for s in shapes}
        tb = sum(count[s] * n * k * 2 for s, (n, k) in shapes.items()) / 1e12
        print()
        for m in ms:
            if all(m in results[s] for s in shapes):
                t_c = sum(count[s] * results[s][m][0] for s in shapes)
                t_b = sum(count[s] * results[s][m][1] for s in shapes)
                print(
                    f"forward M={m}: cuBLAS {t_c * 1e3:.3f} ms ({tb / t_c:.2f} TB/s), rows_gemm best "
                    f"{t_b * 1e3:.3f} ms ({tb / t_b:.2f} TB/s) [{tb * 1e3:.2f} GB of weights]"
                )


if __name__ == "__main__":
    main()
