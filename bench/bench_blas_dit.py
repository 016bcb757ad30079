"""The 7B DiT's products on cuBLAS against cuBLASLt (issue 13): does the compute-bound DiT gain from the library
the speculative verify forward is captured with?

The DiT's GEMMs run at ~780 TFLOP/s (BENCHMARKS.md, issue 13); torch calls cuBLAS for them unless
``torch.backends.cuda.preferred_blas_library("cublaslt")`` (or ``TORCH_BLAS_PREFER_CUBLASLT=1``). This times each
product of one block at the chunk's rows (20,480 tokens a pass, 40,960 when the two guidance passes are batched)
both ways and sums one block's worth (28 blocks a pass).

    python bench/bench_blas_dit.py          # on a GPU
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from cuda_timing import burst_ms as timed  # ms a call over back-to-back calls

D, HIDDEN = 4096, 16384
SHAPES = {  # [N, K] of each product of a block (self-attention q/k/v as three, as the released checkpoint has them)
    "self q/k/v": ((D, D), 3),
    "self out": ((D, D), 1),
    "cross q": ((D, D), 1),
    "cross out": ((D, D), 1),
    "mlp fc1": ((HIDDEN, D), 1),
    "mlp fc2": ((D, HIDDEN), 1),
}
LIBS = ("cublas", "cublaslt")


def main() -> None:
    gen = torch.Generator(device="cuda").manual_seed(0)
    print("| product [N, K] | M | cuBLAS ms (TFLOP/s) | cuBLASLt ms (TFLOP/s) | max diff |")
    print("|---|---:|---:|---:|---:|")
    for m in (20480, 40960):
        block = dict.fromkeys(LIBS, 0.0)
        for name, ((n, k), count) in SHAPES.items():
            w = (torch.randn(n, k, device="cuda", generator=gen) * 0.02).bfloat16()
            x = torch.randn(m, k, device="cuda", generator=gen).bfloat16()
            cells, outs = [], []
            for lib in LIBS:
                torch.backends.cuda.preferred_blas_library(lib)
                ms = timed(lambda x=x, w=w: F.linear(x, w))
                outs.append(F.linear(x, w).float())
                block[lib] += ms * count
                cells.append(f"{ms:.3f} ({2 * m * n * k / ms / 1e9:.0f})")
            torch.backends.cuda.preferred_blas_library("cublas")
            diff = (outs[0] - outs[1]).abs().max().item()
            print(f"| {name} [{n}, {k}] | {m} | " + " | ".join(cells) + f" | {diff:.2e} |", flush=True)
            del w, x, outs
        print(f"one block's products at M = {m}: cuBLAS {block['cublas']:.2f} ms, cuBLASLt {block['cublaslt']:.2f} ms; "
              f"x 28 blocks: {28 * block['cublas'] / 1e3:.3f} / {28 * block['cublaslt'] / 1e3:.3f} s a pass")  # fmt: skip


if __name__ == "__main__":
    main()
