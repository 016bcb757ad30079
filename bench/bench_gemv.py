"""The batch-1 projections of a decode step alone: cuBLAS against the Triton matrix-vector kernel (issue 12).

For each 4B projection shape (QKV, attention output, fc1, fc2, output layer) and the fusion the fused step gives it
(``gemv.gemv``: RMSNorm prologue, SwiGLU prologue, residual epilogue), one CUDA graph calls the product on as many
distinct weight copies as a model has layers (16; 4 for the 524 MB output layer), so the weights stream from HBM
as in a real step, not from L2. Printed per shape: microseconds per call and TB/s of weight read for cuBLAS
(``F.linear``), the kernel with ``gemv.DEFAULT_CONFIG`` (plain and fused), and the best of a sweep over block sizes,
warps and stages.

    python bench/bench_gemv.py                  # H200: all shapes, sweep included (a few minutes of compiles)
    python bench/bench_gemv.py --no-sweep
    python bench/bench_gemv.py --weights int8   # int8 weights with per-row scales (quant.py), gemv.INT8_CONFIG
    python bench/bench_gemv.py --weights int8 --quick-sweep --shapes qkv,proj,fc1,fc2,output

With ``--weights int8`` the kernel columns multiply int8 weights (``gemv(..., scale=)``) and their TB/s count the
int8 bytes and the fp32 scales; cuBLAS stays the bf16 product of the same shape (the yardstick).
"""

import argparse
import itertools
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nemo_cosmos_ar.inference import gemv as G  # noqa: E402
from nemo_cosmos_ar.inference import quant  # noqa: E402

SHAPES = {  # name: (N, K, fusion)
    "qkv": (6144, 4096, "norm"),
    "proj": (4096, 4096, "residual"),
    "fc1": (28672, 4096, "norm"),
    "fc2": (4096, 14336, "swiglu+residual"),
    "output": (64000, 4096, "norm"),
    "fc1-glu": (28672, 4096, "glu"),  # fused: fc1 and SwiGLU in one kernel (14,336 outputs)
}


def graph_time(fn, calls: int, replays: int = 20) -> float:
    """Seconds per call of ``fn(i)`` for i < calls, all captured in one CUDA graph."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for i in range(calls):
            fn(i)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(calls):
            fn(i)
    g.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        g.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / (replays * calls)


def bench_shape(name: str, sweep: list[dict], int8: bool = False, variants=("plain", "fused")) -> str:
    """One table row for projection ``name`` (``int8``: the kernel on int8 weights with per-row scales)."""
    dev, dt = torch.device("cuda"), torch.bfloat16
    n, k, fusion = SHAPES[name]
    copies = 4 if name == "output" else 16
    ws = [torch.randn(n, k, device=dev, dtype=dt) * 0.02 for _ in range(copies)]
    k_in = 2 * k if "swiglu" in fusion else k
    x = torch.randn(1, 1, k_in, device=dev, dtype=dt)
    xk = x[..., :k].contiguous()
    g = torch.rand(k, device=dev, dtype=dt) + 0.5
    res = torch.randn(1, 1, n, device=dev, dtype=dt)
    kw = dict(swiglu="swiglu" in fusion)
    if "norm" in fusion:
        kw.update(norm_weight=g, eps=1e-6)
    if "residual" in fusion:
        kw["residual"] = res
    if fusion == "glu":
        kw, x = {"glu": True}, xk
    tb_bf16 = n * k * 2 / 1e12
    tb = (n * k + 4 * n) / 1e12 if int8 else tb_bf16
    qs = [quant.quantize_rows(w) for w in ws] if int8 else [(w, None) for w in ws]

    def fmt(t, extra="", tb=tb):
        return f"{t * 1e6:.1f} ({tb / t:.2f}){extra}"

    def run(i, xin, cfg=None, **fusion):
        w, scale = qs[i]
        return G.gemv(xin, w, scale=scale, config=cfg, **fusion)

    t_cublas = graph_time(lambda i: F.linear(xk, ws[i]), copies)
    t_plain = graph_time(lambda i: run(i, xk), copies)
    t_fused = graph_time(lambda i: run(i, x, **kw), copies)
    row = [fmt(t_cublas, tb=tb_bf16), fmt(t_plain), fmt(t_fused)]
    if sweep:
        for variant in variants:
            best = None
            for cfg in sweep:
                try:
                    if variant == "plain":
                        t = graph_time(lambda i, c=cfg: run(i, xk, c), copies, replays=10)
                    else:
                        t = graph_time(lambda i, c=cfg: run(i, x, c, **kw), copies, replays=10)
                except Exception as err:  # noqa: BLE001 -- e.g. out of shared memory: skip the config
                    print(f"  {name} {variant} {cfg}: {str(err).splitlines()[0][:100]}", file=sys.stderr)
                    continue
                if best is None or t < best[0]:
                    best = (t, cfg)
            cfg = best[1]
            row.append(fmt(best[0], f" [{cfg['BLOCK_N']}x{cfg['BLOCK_K']} w{cfg['num_warps']} s{cfg['num_stages']}]"))
    return f"| {name} | {n} x {k} | {fusion} | " + " | ".join(row) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--weights", choices=("bf16", "int8"), default="bf16", help="the kernel's weights")
    ap.add_argument(
        "--quick-sweep", action="store_true", help="the plain variant only, over 1-8 rows x 1-4k columns x 4/8 warps"
    )
    args = ap.parse_args()
    int8 = args.weights == "int8"
    block_k = (512, 1024, 2048, 4096) if int8 else (256, 512, 1024, 2048)  # int8 rows are half the bytes
    rows = (1, 2, 4, 8, 16)
    if args.quick_sweep:
        block_k, rows = block_k[1:], rows[:-1]
    sweep = [
        dict(BLOCK_N=bn, BLOCK_K=bk, num_warps=w, num_stages=st)
        for bn, bk, w, st in itertools.product(rows, block_k, (4, 8), (3,))
    ]
    variants = ("plain",) if args.quick_sweep else ("plain", "fused")  # generate runs the plain products
    default = G.INT8_CONFIG if int8 else G.DEFAULT_CONFIG
    print(
        f"{torch.cuda.get_device_name()}, {args.weights} weights (cuBLAS: bf16), streamed from HBM (distinct copies "
        f"per call); gemv's default blocks {default} (bf16 4B shapes: gemv.SHAPE_CONFIGS)\n"
    )
    print(
        "| shape | N x K | fusion | cuBLAS us (TB/s) | gemv us (TB/s) | fused us (TB/s) "
        "| best plain sweep us (TB/s) [config] | best fused sweep us (TB/s) [config] |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.shapes.split(","):
        print(bench_shape(name, [] if args.no_sweep else sweep, int8, variants), flush=True)


if __name__ == "__main__":
    main()
