"""The verify forward's few-row products on cuBLAS against cuBLASLt (issue 13).

A speculative step at L = 63 spends ~2.2 ms of its 3.27 ms in the 4B's products at M = 64 rows (a38's profile:
fc1 1,007 us, fc2 542 + a 40 us split-K reduce, QKV 272, attention-out 198, output layer 145), ~3.4 TB/s of weight
reads where the one-token decode's kernels stream ~4.1 TB/s. torch picks cuBLAS for ``F.linear`` unless
``torch.backends.cuda.preferred_blas_library("cublaslt")``; the step is captured in CUDA graphs, so whichever library
is preferred while capturing is what the step runs. This times each product both ways (16 distinct weights in one
graph, so nothing comes from L2) at M = 16 / 32 / 64 and one step's worth (16 layers + the output layer).

    python bench/bench_blas_rows.py          # on a GPU
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gemv import SHAPES as GEMV_SHAPES  # noqa: E402
from bench.bench_gemv import graph_time  # noqa: E402

PER_STEP = {"qkv": 16, "proj": 16, "fc1": 16, "fc2": 16, "output": 1}
SHAPES = {name: GEMV_SHAPES[name][:2] for name in PER_STEP}  # the 4B's products, [N, K]
LIBS = ("cublas", "cublaslt")


def main() -> None:
    gen = torch.Generator(device="cuda").manual_seed(0)
    rows = (16, 32, 64)
    step = {(lib, m): 0.0 for lib in LIBS for m in rows}
    print("| product [N, K] | M | cuBLAS us | cuBLASLt us | max diff between the two |")
    print("|---|---:|---:|---:|---:|")
    for name, (n, k) in SHAPES.items():
        copies = 4 if name == "output" else 16
        ws = [(torch.randn(n, k, device="cuda", generator=gen) * 0.02).bfloat16() for _ in range(copies)]
        for m in rows:
            x = torch.randn(m, k, device="cuda", generator=gen).bfloat16()
            cells, outs = [], []
            for lib in LIBS:
                torch.backends.cuda.preferred_blas_library(lib)
                us = 1e6 * graph_time(lambda i, x=x, ws=ws: F.linear(x, ws[i]), copies)
                outs.append(F.linear(x, ws[0]).float())
                step[(lib, m)] += us * PER_STEP[name]
                cells.append(f"{us:.1f}")
            torch.backends.cuda.preferred_blas_library("cublas")
            diff = (outs[0] - outs[1]).abs().max().item()
            print(f"| {name} [{n}, {k}] | {m} | " + " | ".join(cells) + f" | {diff:.2e} |", flush=True)
        del ws
        torch.cuda.empty_cache()
    for m in rows:
        print(f"one step's products at M = {m}: cuBLAS {step[('cublas', m)] / 1e3:.3f} ms, "
              f"cuBLASLt {step[('cublaslt', m)] / 1e3:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
