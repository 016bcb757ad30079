"""Would FP8 tensor-core products beat the int8 matrix-vector kernel in the batch-1 AR decode? (issue 13)

The int8 weight-only kernel (``inference/gemv.py``) reads the 4B's projections at 2.1-3.3 TB/s, bound by its
per-weight integer and FMA work; bf16 cuBLAS reaches ~4.3 TB/s on the large shapes. An e4m3 weight with one scale per
output row read by the tensor cores has no per-weight instructions: the token's row is quantized to e4m3 (one scale),
padded to the 16 rows ``torch._scaled_mm`` needs, and cuBLASLt does the rest. This times, per 4B shape, ``_scaled_mm``
at M = 16 with row-wise scales on 16 distinct weight copies replayed in one CUDA graph (so the weights stream from
HBM, as in ``bench_gemv.py``), and prints us per call and TB/s of e4m3 weight bytes. Compare with the int8 kernel's
figures in BENCHMARKS.md (issue 13: QKV 11.3, attention out 8.0, fc1 35.2, fc2 20.1, output layer 71.9 us).

    python bench/bench_fp8_decode_gemm.py          # one GPU
"""

from __future__ import annotations

import torch
from cuda_timing import median_ms

SHAPES = {"qkv": (6144, 4096), "proj": (4096, 4096), "fc1": (28672, 4096), "fc2": (4096, 14336), "out": (64000, 4096)}
COPIES = 16


def main() -> None:
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; {COPIES} weight copies per graph")
    print("| shape | N x K | M | us per product | TB/s of e4m3 weights |")
    print("|---|---|---:|---:|---:|")
    for name, (n, k) in SHAPES.items():
        ws = [(torch.randn(n, k, device=dev, generator=g) * 0.02).to(torch.float8_e4m3fn) for _ in range(COPIES)]
        sw = torch.full((1, n), 1.0 / 448, device=dev)
        for m in (16, 32):
            x = torch.randn(m, k, device=dev, generator=g).to(torch.float8_e4m3fn)
            sx = torch.ones(m, 1, device=dev)

            def run(x=x, sx=sx, sw=sw, ws=ws):
                for w in ws:
                    torch._scaled_mm(x, w.t(), scale_a=sx, scale_b=sw, out_dtype=torch.bfloat16)

            run()
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                run()
            us = median_ms(graph.replay, 10) * 1e3 / COPIES
            print(f"| {name} | {n} x {k} | {m} | {us:.1f} | {n * k / us / 1e6:.2f} |", flush=True)
        del ws


if __name__ == "__main__":
    main()
