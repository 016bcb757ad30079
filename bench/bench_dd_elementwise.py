"""The DiT's elementwise Triton kernels at the real shapes, per launch width (issue 13).

One FP8 forward of the 7B DiT spends ~74 ms of 612 in elementwise kernels (BENCHMARKS.md), of which ~39 ms in the
row quantizers, mostly the MLP's GELU + quantize over 20,480 x 16,384 values; bandwidth alone would allow ~9 ms.
A row of 16,384 fp32 values in one program of 16 warps holds ~32 values a thread plus the GELU's temporaries, which
likely leaves one program per SM and no overlap between a row's loads and the previous row's math. This times each
kernel at each ``num_warps`` (and the quantizers with several rows per launch grid), as the dispatchers launch them,
and prints us per call and GB/s of the bytes it must move. The kernels' outputs do not depend on ``num_warps``.

    python bench/bench_dd_elementwise.py            # one GPU
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cuda_timing import median_ms  # noqa: E402

from nemo_cosmos_ar.diffusion_decoder import fp8, fused  # noqa: E402


def timed_us(fn, reps: int = 20) -> float:
    return median_ms(fn, reps, warmup=3) * 1e3


def main() -> None:
    dev = torch.device("cuda")
    k = fused.triton_kernels()
    s, d, hidden = 20480, 4096, 16384
    g = torch.Generator(device=dev).manual_seed(0)
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; tokens {s}, dim {d}, MLP {hidden}")
    print("| kernel | width | num_warps | us | GB/s |")
    print("|---|---:|---:|---:|---:|")
    for width, gelu in ((hidden, True), (d, False)):
        x = torch.randn(s, width, device=dev, generator=g).to(torch.bfloat16)
        q = torch.empty(s, width, dtype=fp8.FP8, device=dev)
        sc = torch.empty(s, 1, dtype=torch.float32, device=dev)
        moved = x.numel() * 3 + s * 4  # bf16 in, e4m3 out, a scale per row
        for warps in (2, 4, 8, 16, 32):

            def run(w=warps, a=(x, q, sc, width), gelu=gelu):
                lut = fp8.gelu_table(dev) if gelu else a[0]  # generate's GELU: the table, the GPU's rounding
                k["quant"][(s,)](
                    *a, fp8.MIN_SCALE, lut, BLOCK_D=fused.pow2(a[3]), GELU=gelu, HW_ROUND=True, LUT=gelu, num_warps=w
                )

            us = timed_us(run)
            name = "GELU + row quantize" if gelu else "row quantize"
            print(f"| {name} | {width} | {warps} | {us:.0f} | {moved / us / 1e3:.0f} |", flush=True)
    x = torch.randn(1, s, d, device=dev, generator=g).to(torch.bfloat16)
    mod = (0.1 * torch.randn(1, 1, 3 * d, device=dev, generator=g)).to(torch.bfloat16)
    shift, scale, gate = mod[..., :d], mod[..., d : 2 * d], mod[..., 2 * d :]
    y = torch.randn_like(x)
    out = torch.empty_like(x)
    q = torch.empty(s, d, dtype=fp8.FP8, device=dev)
    sc = torch.empty(s, 1, dtype=torch.float32, device=dev)
    stride = fused.mod_stride(shift, scale)
    for warps in (4, 8, 16):

        def ln(w=warps):
            k["ln"][(s,)](x, shift, scale, out, out, s, d, stride, 1e-6, 0.0, BLOCK_D=d, QUANT=False, num_warps=w)

        def lnq(w=warps):
            k["ln"][(s,)](x, shift, scale, q, sc, s, d, stride, 1e-6, fp8.MIN_SCALE, BLOCK_D=d, QUANT=True,
                          HW_ROUND=True, num_warps=w)  # fmt: skip

        def gr(w=warps):
            k["gate"][(s,)](x, y, gate, out, s, d, stride, BLOCK_D=d, num_warps=w)

        for name, fn, moved in (
            ("modulated LayerNorm", ln, x.numel() * 4),
            ("modulated LayerNorm + quantize", lnq, x.numel() * 3),
            ("gated residual", gr, x.numel() * 6),
        ):
            us = timed_us(fn)
            print(f"| {name} | {d} | {warps} | {us:.0f} | {moved / us / 1e3:.0f} |", flush=True)
    heads, hd = 32, 128
    qk = torch.randn(1, s, heads, hd, device=dev, generator=g).to(torch.bfloat16)
    w = torch.ones(hd, device=dev, dtype=torch.bfloat16)
    cos = torch.randn(s, hd, device=dev, generator=g)
    sin = torch.randn(s, hd, device=dev, generator=g)
    o = torch.empty_like(qk)
    rows = s * heads
    for block_r, warps in ((16, 4), (16, 8), (32, 4), (32, 8), (64, 8)):

        def qkn(br=block_r, wp=warps):
            k["qk"][(-(-rows // br),)](qk, w, cos, sin, o, rows, heads, s, 1e-6, D=hd, HALF=hd // 2,
                                       BLOCK_HALF=hd // 2, BLOCK_R=br, ROPE=True, num_warps=wp)  # fmt: skip

        us = timed_us(qkn)
        print(
            f"| q/k RMSNorm + RoPE (BLOCK_R {block_r}) | {hd} | {warps} | {us:.0f} | {qk.numel() * 4 / us / 1e3:.0f} |"
        )


if __name__ == "__main__":
    main()
