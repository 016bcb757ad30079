"""The int8 batch-1 decode products: the Triton kernel (``gemv.gemv(..., scale=)``, what generate runs) against the
hand-written CUDA kernel (``inference/gemv_cuda.py``), per 4B shape and as a layer's chain with PDL.

Each shape runs on 16 distinct int8 weight copies (4 for the output layer) in one CUDA graph, so weights stream
from HBM. Printed: us per product and TB/s of int8 + scale bytes, the CUDA kernel's best block choice of a sweep
(rows per warp, loads in flight per lane per row, warps, blocks per SM of a looping grid or 0 = one block per row
group), its error against an fp32 reference and its agreement with the Triton kernel's bf16 outputs; then 16
layers of the four products chained in one graph with PDL, per layer.

    python bench/bench_gemv_cuda.py            # H200
    python bench/bench_gemv_cuda.py --quick    # the default block choice only
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import graph_time  # noqa: E402
from nemo_cosmos_ar.inference import gemv as G  # noqa: E402
from nemo_cosmos_ar.inference import gemv_cuda as GC  # noqa: E402
from nemo_cosmos_ar.inference import quant  # noqa: E402

SHAPES = {
    "qkv": (6144, 4096),
    "proj": (4096, 4096),
    "fc1": (28672, 4096),
    "fc2": (4096, 14336),
    "output": (64000, 4096),
}


def shape_row(name: str, n: int, k: int, sweep: list, dev, best_cfg: dict):
    """Print one table row; returns the shape's weight copies and input row (for the chain)."""
    copies = 4 if name == "output" else 16
    qs = [quant.quantize_rows(torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02) for _ in range(copies)]
    x = torch.randn(1, 1, k, device=dev, dtype=torch.bfloat16)
    tb = (n * k + 4 * n) / 1e12

    def fmt(t, tb=tb):
        return f"{t * 1e6:.1f} ({tb / t:.2f})"

    ref = (qs[0][0].float() * qs[0][1][:, None]) @ x.reshape(k).float()
    tri = G.gemv(x, qs[0][0], scale=qs[0][1]).reshape(n)
    t_tri = graph_time(lambda i: G.gemv(x, qs[i][0], scale=qs[i][1]), copies)
    t_tri_pdl = graph_time(lambda i: G.gemv(x, qs[i][0], scale=qs[i][1], pdl=True), copies)
    results = []
    for cfg in sweep:
        try:
            t = graph_time(lambda i, c=cfg: GC.gemv_int8(x, qs[i][0], qs[i][1], config=c), copies, replays=10)
        except Exception as err:  # noqa: BLE001 - report and go on
            print(f"  {name} {cfg}: {str(err).splitlines()[0][:120]}", file=sys.stderr)
            continue
        results.append((t, cfg))
    if not results:
        print(f"| {name} | {n} x {k} | {fmt(t_tri)} | {fmt(t_tri_pdl)} | failed | | | | |")
        return qs, x
    t_def = next((t for t, c in results if c == GC.DEFAULT_CONFIG), float("nan"))
    t_best, cfg = min(results)
    best_cfg[name] = cfg
    t_best = graph_time(lambda i: GC.gemv_int8(x, qs[i][0], qs[i][1], config=cfg), copies)
    t_best_pdl = graph_time(lambda i: GC.gemv_int8(x, qs[i][0], qs[i][1], config=cfg, pdl=True), copies)
    out = GC.gemv_int8(x, qs[0][0], qs[0][1], config=cfg).reshape(n)
    scale = ref.abs().max().item()
    err_c = (out.float() - ref).abs().max().item() / scale
    err_t = (tri.float() - ref).abs().max().item() / scale
    same = (out == tri).float().mean().item()
    print(
        f"| {name} | {n} x {k} | {fmt(t_tri)} | {fmt(t_tri_pdl)} | {fmt(t_def)} | {fmt(t_best)} {list(cfg)} | "
        f"{fmt(t_best_pdl)} | {err_c:.2e} / {err_t:.2e} | {same:.4f} |",
        flush=True,
    )
    return qs, x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    dev = torch.device("cuda")
    sweep = [GC.DEFAULT_CONFIG, *sorted(set(GC.SHAPE_CONFIGS.values()))]
    if not args.quick:
        choices = itertools.product((1, 2, 4), (2, 4, 8), (4, 8), (0, 4, 8))
        sweep += [c for c in choices if c != GC.DEFAULT_CONFIG]
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; {len(sweep)} CUDA block choices\n")
    print(
        "| shape | N x K | Triton | Triton + PDL | CUDA default | CUDA best [rows, unroll, warps, per SM] | "
        "CUDA best + PDL | max rel err (CUDA / Triton) | bf16 outputs = Triton |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    best_cfg = {}
    data = {}
    for name, (n, k) in SHAPES.items():
        data[name] = shape_row(name, n, k, sweep, dev, best_cfg)
    if len(best_cfg) < 4:
        return
    layer = ("qkv", "proj", "fc1", "fc2")

    def chain(kind: str, pdl: bool):
        def step(i):
            for name in layer:
                qs, x = data[name]
                w, s = qs[i]
                if kind == "triton":
                    G.gemv(x, w, scale=s, pdl=pdl)
                else:
                    GC.gemv_int8(x, w, s, pdl=pdl)  # generate's blocks (SHAPE_CONFIGS)

        return graph_time(step, 16) * 1e6

    print("\nA layer's four products (QKV, attention out, fc1, fc2), 16 layers chained in one graph, us per layer:\n")
    print("| kernel | no PDL | PDL |\n|---|---:|---:|")
    print(f"| triton | {chain('triton', False):.1f} | {chain('triton', True):.1f} |")
    print(f"| cuda | {chain('cuda', False):.1f} | {chain('cuda', True):.1f} |")
    print(f"\nbest CUDA blocks per shape: {best_cfg}; the chain ran gemv_cuda.SHAPE_CONFIGS")


if __name__ == "__main__":
    main()
