"""The int8 batch-1 decode products on the tensor cores (``inference/gemv_mma.py``) against the CUDA-core kernel
generate runs now (``inference/gemv_cuda.py`` with its ``SHAPE_CONFIGS``), per 4B shape and as a layer's chain.

Each shape runs on 16 distinct int8 weight copies (4 for the output layer) in one CUDA graph with PDL, so weights
stream from HBM. Printed per shape: us per product and TB/s of int8 + scale bytes for the CUDA-core kernel and for
the tensor-core kernel's block choices (16-row tiles per block, 64-column chunks in flight per warp, warps), the best
one's error against an fp32 reference next to the CUDA-core kernel's, the share of bf16 outputs equal to it, and two
range checks (x scaled by 2^20, past fp16's range, and by 2^-40); then 16 layers of the four products chained.

    python bench/bench_gemv_mma.py            # H200
    python bench/bench_gemv_mma.py --quick    # the default block choice only
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import graph_time  # noqa: E402
from nemo_cosmos_ar.inference import gemv_cuda as GC  # noqa: E402
from nemo_cosmos_ar.inference import gemv_mma as GM  # noqa: E402
from nemo_cosmos_ar.inference import quant  # noqa: E402

SHAPES = {
    "qkv": (6144, 4096),
    "proj": (4096, 4096),
    "fc1": (28672, 4096),
    "fc2": (4096, 14336),
    "output": (64000, 4096),
}


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return (out.float().reshape(-1) - ref).abs().max().item() / ref.abs().max().item()


def shape_row(name: str, n: int, k: int, sweep: list, best: dict):
    copies = 4 if name == "output" else 16
    qs = [quant.quantize_rows(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02) for _ in range(copies)]
    x = torch.randn(1, 1, k, device="cuda", dtype=torch.bfloat16)
    tb = (n * k + 4 * n) / 1e12

    def fmt(t):
        return f"{t * 1e6:.1f} ({tb / t:.2f})"

    def ref_of(xx):
        return (qs[0][0].float() * qs[0][1][:, None]) @ xx.reshape(k).float()

    ref = ref_of(x)
    cuda_out = GC.gemv_int8(x, qs[0][0], qs[0][1])
    t_cuda = graph_time(lambda i: GC.gemv_int8(x, qs[i][0], qs[i][1], pdl=True), copies)
    results = []
    for cfg in sweep:
        try:
            t = graph_time(lambda i, c=cfg: GM.gemv_int8_mma(x, qs[i][0], qs[i][1], config=c, pdl=True), copies, 10)
        except Exception as err:  # noqa: BLE001 - report and go on
            print(f"  {name} {cfg}: {str(err).splitlines()[0][:200]}", file=sys.stderr)
            continue
        results.append((t, cfg))
    if not results:
        print(f"| {name} | {n} x {k} | {fmt(t_cuda)} | failed | | | | | |", flush=True)
        return qs, x
    t_def = next((t for t, c in results if c == GM.DEFAULT_CONFIG), float("nan"))
    _, cfg = min(results)
    best[name] = cfg
    t_best = graph_time(lambda i: GM.gemv_int8_mma(x, qs[i][0], qs[i][1], config=cfg, pdl=True), copies)
    out = GM.gemv_int8_mma(x, qs[0][0], qs[0][1], config=cfg)
    same = (out == cuda_out).float().mean().item()
    # graph replay equal to the eager call
    yg = torch.empty_like(out)
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        GM.gemv_int8_mma(x, qs[0][0], qs[0][1], config=cfg, pdl=True)
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(g):
        yg.copy_(GM.gemv_int8_mma(x, qs[0][0], qs[0][1], config=cfg, pdl=True))
    g.replay()
    torch.cuda.synchronize()
    graph_eq = torch.equal(yg, out)
    big, tiny = x * 2.0**20, x * 2.0**-40
    e_big = rel_err(GM.gemv_int8_mma(big, qs[0][0], qs[0][1], config=cfg), ref_of(big))
    e_tiny = rel_err(GM.gemv_int8_mma(tiny, qs[0][0], qs[0][1], config=cfg), ref_of(tiny))
    print(
        f"| {name} | {n} x {k} | {fmt(t_cuda)} | {fmt(t_def)} | {fmt(t_best)} {list(cfg)} | "
        f"{rel_err(out, ref):.2e} / {rel_err(cuda_out, ref):.2e} | {same:.4f} | {e_big:.2e} / {e_tiny:.2e} | "
        f"{graph_eq} |",
        flush=True,
    )
    return qs, x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sweep = [GM.DEFAULT_CONFIG]
    if not args.quick:
        sweep += [c for c in itertools.product((1, 2), (2, 4, 8), (4, 8, 16)) if c != GM.DEFAULT_CONFIG]
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; {len(sweep)} tensor-core block choices\n")
    print(
        "| shape | N x K | CUDA cores + PDL | tensor cores default | tensor cores best [tiles, chunks, warps] | "
        "max rel err (tensor / CUDA cores) | bf16 outputs = CUDA cores | rel err x*2^20 / x*2^-40 | graph = eager |"
    )
    print("|---|---|---:|---:|---:|---|---:|---|---|")
    best: dict = {}
    data = {name: shape_row(name, n, k, sweep, best) for name, (n, k) in SHAPES.items()}
    if len(best) < 5:
        return
    layer = ("qkv", "proj", "fc1", "fc2")

    def chain(kind: str) -> float:
        def step(i):
            for name in layer:
                qs, x = data[name]
                if kind == "cuda":
                    GC.gemv_int8(x, qs[i][0], qs[i][1], pdl=True)
                else:
                    GM.gemv_int8_mma(x, qs[i][0], qs[i][1], pdl=True, config=best[name])

        return graph_time(step, 16) * 1e6

    print("\nA layer's four products chained with PDL, 16 layers in one graph, us per layer:\n")
    print(f"| CUDA cores | {chain('cuda'):.1f} |\n| tensor cores (best per shape) | {chain('mma'):.1f} |")
    print(f"\nbest tensor-core blocks per shape: {best}")


if __name__ == "__main__":
    main()
