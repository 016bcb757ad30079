"""The int8 batch-1 decode products on the int8 tensor cores, against the current int8 matrix-vector kernel (issue 13).

``gemv(..., scale=, mma=True)`` (``gemv_triton.gemv_i8mma_kernel``) feeds the int8 weight tiles straight to int8
MMAs, with x written per group of columns as two int8 values (``hi * s1 + lo * s2``): no int-to-float work per
weight, which is what held the int8 kernel's small products at ~2.2 TB/s. Per 4B shape, each on 16 distinct weight
copies in one CUDA graph (so the weights stream from HBM): microseconds per product and TB/s of int8 weight + fp32
scale bytes, for the current kernel (``INT8_CONFIG``) and the MMA kernel (its default and the best of a sweep), with
and without programmatic dependent launch; and the MMA kernel's largest difference from the current kernel's output,
relative to that output's largest value.

    python bench/bench_gemv_mma.py             # H200
    python bench/bench_gemv_mma.py --no-sweep
"""

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_gemv import SHAPES, graph_time  # noqa: E402

from nemo_cosmos_ar.inference import gemv as G  # noqa: E402
from nemo_cosmos_ar.inference import quant  # noqa: E402


def row(name: str, sweep: list[dict]) -> str:
    dev, dt = torch.device("cuda"), torch.bfloat16
    n, k, _ = SHAPES[name]
    copies = 4 if name == "output" else 16
    qs = [quant.quantize_rows(torch.randn(n, k, device=dev, dtype=dt) * 0.02) for _ in range(copies)]
    x = torch.randn(1, 1, k, device=dev, dtype=dt)
    x[..., ::97] *= 20  # a few outlier channels, as real activations have
    tb = (n * k + 4 * n) / 1e12

    def t(**kw):
        return graph_time(lambda i: G.gemv(x, qs[i][0], scale=qs[i][1], **kw), copies)

    def fmt(sec):
        return f"{sec * 1e6:.1f} ({tb / sec:.2f})"

    cells = [fmt(t()), fmt(t(pdl=True)), fmt(t(mma=True)), fmt(t(mma=True, pdl=True))]
    best = None
    for cfg in sweep:
        try:
            sec = graph_time(lambda i, c=cfg: G.gemv(x, qs[i][0], scale=qs[i][1], mma=True, config=c), copies, 10)
        except Exception as err:  # noqa: BLE001 -- e.g. out of shared memory: skip the config
            print(f"  {name} {cfg}: {str(err).splitlines()[0][:120]}", file=sys.stderr)
            continue
        if best is None or sec < best[0]:
            best = (sec, cfg)
    if best:
        c = best[1]
        cells.append(
            f"{fmt(best[0])} [{c['BLOCK_N']}x{c['BLOCK_K']} g{c['GROUPS']} w{c['num_warps']} s{c['num_stages']}]"
        )
        cells.append(fmt(t(mma=True, pdl=True, config=best[1])))
    ref = G.gemv(x, qs[0][0], scale=qs[0][1]).float()
    got = G.gemv(x, qs[0][0], scale=qs[0][1], mma=True).float()
    exact = (qs[0][0].float() @ x.reshape(k).float()) * qs[0][1]
    err = (got - ref).abs().max().item() / ref.abs().max().item()
    err_exact = (got.reshape(n) - exact).abs().max().item() / exact.abs().max().item()
    cells.append(f"{err:.1e} / {err_exact:.1e}")
    return f"| {name} | {n} x {k} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--shapes", default="qkv,proj,fc1,fc2,output")
    args = ap.parse_args()
    sweep = [
        dict(BLOCK_N=bn, BLOCK_K=bk, GROUPS=g, num_warps=w, num_stages=st)
        for bn, bk, g, w, st in itertools.product((16, 32, 64), (256, 512, 1024), (8,), (4, 8), (3, 4))
    ] + [dict(G.INT8_MMA_CONFIG, GROUPS=1), dict(G.INT8_MMA_CONFIG, GROUPS=2)]
    if args.no_sweep:
        sweep = []
    print(f"{torch.cuda.get_device_name()}; int8 weights, per-row scales; INT8_CONFIG {G.INT8_CONFIG}, "
          f"INT8_MMA_CONFIG {G.INT8_MMA_CONFIG}\n")  # fmt: skip
    print(
        "| shape | N x K | int8 kernel us (TB/s) | + PDL | MMA kernel | MMA + PDL | MMA, best of sweep [config] "
        "| best + PDL | MMA vs int8 kernel / vs exact (max diff / max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.shapes.split(","):
        print(row(name, sweep), flush=True)


if __name__ == "__main__":
    main()
