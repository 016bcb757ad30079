"""The speculative verify forward's products on one GPU (issue 13): ``rows_kernel.rows_linear`` against cuBLAS
(``F.linear``) for the 4B's five weight shapes at M = 16 / 32 / 64 rows (L = 15 / 31 / 63).

Each product is timed over 16 distinct weights of its shape (as the 16 layers; the output layer over 4), all in one
CUDA graph, so no weight is read from L2. First a sweep of launch choices at M = 64 per shape, then the best of it
and cuBLAS at every M, and the products of one whole verify step (16 layers x 4 + the output layer).

    python bench/bench_rows.py [--write best.json]   # the sweep's best as a COSMOS_AR_ROWS_CONFIGS file
"""

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import graph_time  # noqa: E402

SHAPES = {  # name: (N, K, copies)
    "qkv": (6144, 4096, 16),
    "proj": (4096, 4096, 16),
    "fc1": (28672, 4096, 16),
    "fc2": (4096, 14336, 16),
    "output": (64000, 4096, 4),
}
PER_STEP = {"qkv": 16, "proj": 16, "fc1": 16, "fc2": 16, "output": 1}


def sweep_for(name: str) -> list[dict]:
    """Launch choices to try: the many-tile products (fc1, output) unsplit, the others split over K."""
    few = name in ("qkv", "proj", "fc2")
    out = []
    blocks_n = (64, 128) if few else (128, 256)
    splits = (2, 4, 8) + ((16,) if name == "fc2" else ()) if few else (1,)
    warps_stages = ((4, 4), (8, 4), (4, 3)) if few else ((4, 4), (8, 4), (4, 3), (8, 3))
    for bn, bk, s, (w, st) in itertools.product(blocks_n, (64, 128), splits, warps_stages):
        if (64 + bn) * bk * 2 * st > 200 * 1024:  # shared memory of the pipeline's stages
            continue
        out.append({"BLOCK_N": bn, "BLOCK_K": bk, "SPLIT_K": s, "num_warps": w, "num_stages": st})
    return out


def time_product(x: torch.Tensor, ws: list[torch.Tensor], cfg) -> float:
    """Seconds per product of ``x`` with each of ``ws`` in one graph: cuBLAS (``cfg == "cublas"``) or rows_kernel."""
    from nemo_cosmos_ar.inference import rows_kernel as rk

    if cfg == "cublas":
        return graph_time(lambda i: F.linear(x, ws[i]), len(ws))
    return graph_time(lambda i: rk.rows_linear(x, ws[i], cfg), len(ws))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="write the sweep's best per shape here (COSMOS_AR_ROWS_CONFIGS format)")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset of " + ",".join(SHAPES))
    ap.add_argument("--no-sweep", action="store_true", help="time rows_kernel's configured choices only")
    ap.add_argument("--budget", type=float, default=240.0, help="seconds for the whole sweep (split over the shapes)")
    args = ap.parse_args()
    from nemo_cosmos_ar.inference import rows_kernel as rk

    dev, dt = torch.device("cuda"), torch.bfloat16
    torch.manual_seed(0)
    names = [s for s in args.shapes.split(",") if s]
    best: dict[str, dict] = {}
    results: dict[tuple[str, int], dict] = {}
    t0 = time.perf_counter()
    for name in names:
        n, k, copies = SHAPES[name]
        ws = [torch.randn(n, k, device=dev, dtype=dt) * 0.02 for _ in range(copies)]
        xs = {m: torch.randn(m, k, device=dev, dtype=dt) for m in (16, 32, 64)}
        gb = n * k * 2 / 1e9

        def timed(m, cfg, ws=ws, xs=xs):
            return time_product(xs[m], ws, cfg)

        # correctness once per shape against cuBLAS (fp32 sums in another order: within one bf16 rounding or two)
        ref = F.linear(xs[64], ws[0]).float()
        got = rk.rows_linear(xs[64], ws[0]).float()
        err = ((got - ref).abs() / ref.abs().clamp(min=1e-2)).max().item()
        cands = [rk.config_for(n, k)] + ([] if args.no_sweep else sweep_for(name))
        timing = []
        t_shape = time.perf_counter()
        for cfg in cands:
            if time.perf_counter() - t_shape > args.budget / len(names):
                print(f"  {name}: sweep stopped at its share of --budget ({len(timing)} of {len(cands)} timed)")
                break
            try:
                timing.append((timed(64, cfg), cfg))
            except Exception as e:  # out of resources etc.: skip that choice
                print(f"  {name} {cfg}: {type(e).__name__}: {str(e)[:100]}")
        timing.sort(key=lambda t: t[0])
        best[name] = timing[0][1]
        print(
            f"{name} [{n}, {k}]: {len(timing)} choices, best {1e6 * timing[0][0]:.1f} us ({gb / timing[0][0] / 1e3:.2f}"
            f" TB/s) {timing[0][1]}; configured {rk.config_for(n, k)}; max rel. diff to cuBLAS {err:.2e}; "
            f"{time.perf_counter() - t0:.0f} s so far",
            flush=True,
        )
        for m in (16, 32, 64):
            results[(name, m)] = {
                "cublas": timed(m, "cublas"),
                "configured": timed(m, rk.config_for(n, k)),
                "best": timed(m, best[name]),
            }
        ws.clear()
        torch.cuda.empty_cache()
    print()
    print("| product [N, K] | M | cuBLAS us (TB/s) | rows_kernel configured us (TB/s) | rows_kernel best us (TB/s) |")
    print("|---|---:|---:|---:|---:|")
    for (name, m), r in results.items():
        n, k, _ = SHAPES[name]
        gb = n * k * 2 / 1e9
        cells = [f"{1e6 * r[c]:.1f} ({gb / r[c] / 1e3:.2f})" for c in ("cublas", "configured", "best")]
        print(f"| {name} [{n}, {k}] | {m} | " + " | ".join(cells) + " |")
    if set(names) == set(SHAPES):
        print()
        print("| M | one step's products: cuBLAS ms | rows_kernel configured ms | rows_kernel best ms |")
        print("|---:|---:|---:|---:|")
        for m in (16, 32, 64):
            tot = {c: sum(PER_STEP[s] * results[(s, m)][c] for s in SHAPES) for c in ("cublas", "configured", "best")}
            print(f"| {m} | {1e3 * tot['cublas']:.3f} | {1e3 * tot['configured']:.3f} | {1e3 * tot['best']:.3f} |")
    print()
    print("best launch choices (M = 64):")
    for name in names:
        print(f"  {name}: {best[name]}")
    if args.write:
        data = {f"{SHAPES[s][0]},{SHAPES[s][1]}": best[s] for s in names}
        args.write.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
