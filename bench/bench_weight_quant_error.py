"""How much error weight-only quantization puts on one product, before building a kernel for it (CPU, seconds).

Why: the one-GPU goal of issue 13 is ~4 s away, and the AR decode streams its weights once per token, so 4-bit
weights would halve its 12.7-13.4 s of reads. Whether that is acceptable depends on the error per product, which can
be estimated without the released weights: a Gaussian weight matrix at the 4B's row length (4,096) against random
activations, the relative L2 error of ``x @ dequant(quant(W)).T`` against ``x @ W.T``.

Schemes: symmetric round-to-nearest with one scale per group of G weights of a row (G = K: per row, what
``--decode-weights int8`` does), the scale ``clip * max|w| / qmax``; for each scheme the best clip of a small search
(clipping the outliers trades their error for a finer step). Prints a markdown table.

Usage::

    python bench/bench_weight_quant_error.py
"""

from __future__ import annotations

import argparse

import torch


def quantize(w: torch.Tensor, group: int, bits: int, clip: float) -> torch.Tensor:
    """``w [N, K]`` rounded to ``bits``-bit symmetric levels with one scale per ``group`` weights of a row, and back."""
    n, k = w.shape
    g = w.reshape(n, k // group, group)
    qmax = 2 ** (bits - 1) - 1
    scale = g.abs().amax(-1, keepdim=True) * clip / qmax
    return ((g / scale).round().clamp(-qmax - 1, qmax) * scale).reshape(n, k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    w = torch.randn(args.rows, args.k, generator=g)
    x = torch.randn(args.tokens, args.k, generator=g)
    ref = x @ w.T
    print("| bits | group | best clip | rel. L2 error of the product | at clip 1.0 |\n|---:|---:|---:|---:|---:|")
    for bits, group in ((8, args.k), (8, 128), (4, 128), (4, 64), (4, 32)):
        errs = {
            c: (torch.linalg.norm(x @ quantize(w, group, bits, c).T - ref) / torch.linalg.norm(ref)).item()
            for c in (1.0, 0.95, 0.9, 0.85, 0.8, 0.75)
        }
        best = min(errs, key=errs.get)
        label = f"{group} (a row)" if group == args.k else str(group)
        print(f"| {bits} | {label} | {best:.2f} | {errs[best]:.2e} | {errs[1.0]:.2e} |")


if __name__ == "__main__":
    main()
