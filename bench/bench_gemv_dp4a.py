"""The int8 batch-1 decode products with integer dot products, against the current int8 matrix-vector kernel (issue 13).

``gemv(..., scale=, dp4a=True)`` (``gemv_triton.gemv_dp4a_kernel``) writes x as two (or three) int8 values per column
and multiplies 4 weights by 4 x values in one ``dp4a`` instruction: no int-to-float work per weight, which is what
holds the int8 kernel's products at 2.1-3.6 TB/s. Per 4B shape, each on 16 distinct weight
copies in one CUDA graph (so the weights stream from HBM): microseconds per product and TB/s of int8 weight + fp32
scale bytes, for the current kernel (``INT8_CONFIG``) and the dp4a kernel (two and three levels, and the best of a sweep), with
and without programmatic dependent launch; and the dp4a kernel's largest difference from the current kernel's output
and from the exact product, relative to that output's largest value.

    python bench/bench_gemv_dp4a.py             # H200
    python bench/bench_gemv_dp4a.py --no-sweep
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

    three = dict(G.DP4A_CONFIG, LEVELS=3)
    cells = [
        fmt(t()),
        fmt(t(pdl=True)),
        fmt(t(dp4a=True)),
        fmt(t(dp4a=True, pdl=True)),
        fmt(t(dp4a=True, config=three)),
    ]
    best = None
    for cfg in sweep:
        try:
            sec = graph_time(lambda i, c=cfg: G.gemv(x, qs[i][0], scale=qs[i][1], dp4a=True, config=c), copies, 10)
        except Exception as err:  # noqa: BLE001 -- e.g. out of shared memory: skip the config
            print(f"  {name} {cfg}: {str(err).splitlines()[0][:120]}", file=sys.stderr)
            continue
        if best is None or sec < best[0]:
            best = (sec, cfg)
    if best:
        c = best[1]
        cells.append(
            f"{fmt(best[0])} [{c['BLOCK_N']}x{c['BLOCK_K']} L{c['LEVELS']} w{c['num_warps']} s{c['num_stages']}]"
        )
        cells.append(fmt(t(dp4a=True, pdl=True, config=best[1])))
    ref = G.gemv(x, qs[0][0], scale=qs[0][1]).float()
    got = G.gemv(x, qs[0][0], scale=qs[0][1], dp4a=True).float()
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
        dict(BLOCK_N=bn, BLOCK_K=bk, LEVELS=2, num_warps=w, num_stages=st)
        for bn, bk, w, st in itertools.product((2, 4, 8, 16), (1024, 2048, 4096), (4, 8), (3,))
    ]
    if args.no_sweep:
        sweep = []
    print(f"{torch.cuda.get_device_name()}; int8 weights, per-row scales; INT8_CONFIG {G.INT8_CONFIG}, "
          f"DP4A_CONFIG {G.DP4A_CONFIG}\n")  # fmt: skip
    print(
        "| shape | N x K | int8 kernel us (TB/s) | + PDL | dp4a, 2 levels | + PDL | dp4a, 3 levels "
        "| dp4a, best of sweep [config] | best + PDL | dp4a vs int8 kernel / vs exact (max diff / max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.shapes.split(","):
        print(row(name, sweep), flush=True)


if __name__ == "__main__":
    main()
