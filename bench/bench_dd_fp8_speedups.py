"""Two cheaper ways through the DiT's FP8 path, measured before either becomes a default (issue 13).

1. **The GPU's e4m3 conversion rounds** the quantizers' quotients (``fp8.HARDWARE_ROUNDING``) instead of the
   written-out round-to-nearest-even of ``fused_triton._round_e4m3`` (needed by the CPU interpreter). Lossless only if
   both give the same byte for every input: checked here on **every fp32 value in [-448, 448]** (the quotients are
   clamped to that range), against torch's own ``.to(float8_e4m3fn)`` as well; then the quantizer kernels are timed
   both ways and their outputs compared byte for byte on real-shaped rows.
2. **cuBLASLt's fast FP8 accumulation** (``_scaled_mm(use_fast_accum=True)``: no periodic promotion of the tensor
   cores' partial sums to fp32). Not lossless: the error it adds is printed next to FP8's own, per GEMM shape (against
   the fp32 product of the same e4m3 operands) and for the whole DiT forward (against bf16).

Then the 7B DiT's one-GPU guided step (batch 2, FP8 GEMMs, random weights, 20,480 tokens) with each and both.

    python bench/bench_dd_fp8_speedups.py                 # one H200
    python bench/bench_dd_fp8_speedups.py --skip-exhaustive --steps 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_dd_kernels import _batch2, build, timed  # noqa: E402

from nemo_cosmos_ar.diffusion_decoder import fp8, fused  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.fp8 import FP8Linear  # noqa: E402

FP8_MAX_BITS = 0x43E00000  # 448.0


def _round_kernel():
    import triton
    import triton.language as tl

    from nemo_cosmos_ar.diffusion_decoder.fused_triton import _round_e4m3

    @triton.jit
    def both(out_sw, out_hw, base, n, NEG: tl.constexpr, BLOCK: tl.constexpr):
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        ok = i < n
        q = (base + i).to(tl.float32, bitcast=True)
        if NEG:
            q = -q  # flips the sign bit only (0 -> -0 too)
        tl.store(out_sw + i, _round_e4m3(q).to(tl.float8e4nv).to(tl.uint8, bitcast=True), mask=ok)
        tl.store(out_hw + i, q.to(tl.float8e4nv, fp_downcast_rounding="rtne").to(tl.uint8, bitcast=True), mask=ok)

    return both


def exhaustive_check(chunk: int = 1 << 27) -> None:
    """Every fp32 bit pattern with |q| <= 448, both signs: written-out rounding vs the GPU's vs torch's cast."""
    both = _round_kernel()
    dev = torch.device("cuda")
    sw = torch.empty(chunk, dtype=torch.uint8, device=dev)
    hw = torch.empty_like(sw)
    diff_sw_hw = diff_torch = total = zeros_only = 0
    seen: list[str] = []
    for neg in (False, True):
        for base in range(0, FP8_MAX_BITS + 1, chunk):
            n = min(chunk, FP8_MAX_BITS + 1 - base)
            both[(triton_cdiv(n, 1024),)](sw, hw, base, n, NEG=neg, BLOCK=1024)
            q = torch.arange(base, base + n, dtype=torch.int32, device=dev).view(torch.float32)
            ref = (-q if neg else q).to(torch.float8_e4m3fn).view(torch.uint8)
            bad_sw = sw[:n] != hw[:n]
            diff_sw_hw += int(bad_sw.sum())
            zeros_only += int((bad_sw & ((hw[:n] & 0x7F) == 0) & ((sw[:n] & 0x7F) == 0)).sum())
            bad = (hw[:n] != ref).nonzero()[:, 0]
            diff_torch += bad.numel()
            for i in bad[:4].tolist():
                q_i = (-q[i] if neg else q[i]).item()
                seen.append(
                    f"{q_i!r} (bits {(base + i) | (1 << 31 if neg else 0):#010x}): GPU {int(hw[i]):#04x}, "
                    f"torch {int(ref[i]):#04x}, written-out {int(sw[i]):#04x}"
                )
            total += n
    print(
        f"\n| e4m3 rounding, every fp32 value in [-448, 448] | values | written-out != GPU conversion | "
        f"GPU conversion != torch cast |\n|---|---:|---:|---:|\n| | {total:,} | {diff_sw_hw} (of which +0 against "
        f"-0: {zeros_only}) | {diff_torch} |",
        flush=True,
    )
    for line in seen:
        print(f"- GPU conversion != torch cast at {line}")


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


VARIANTS = (  # (name, HARDWARE_ROUNDING, GELU_TABLE); a fast division (row reciprocal + one fma correction) was
    # measured in call c8 too and dropped (code in commit e204913)
    ("written-out rounding", False, False),
    ("GPU rounding", True, False),
    ("GPU rounding + GELU table", True, True),
)


def _set(hw: bool, lut: bool) -> None:
    fp8.HARDWARE_ROUNDING, fp8.GELU_TABLE = hw, lut


@torch.no_grad()
def quantizer_table(s: int = 20480, d: int = 4096, hidden: int = 16384) -> None:
    """The three quantizing kernels as generate launches them, per variant: us, and against the written-out
    rounding with the IEEE division and the GELU formula: bytes that differ, values that differ (-0 == +0)."""
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    x4 = torch.randn(s, d, device=dev, generator=g).to(torch.bfloat16)
    xh = (2 * torch.randn(s, hidden, device=dev, generator=g)).to(torch.bfloat16)
    x3 = x4[None]
    mod = (0.1 * torch.randn(1, 1, 2 * d, device=dev, generator=g)).to(torch.bfloat16)
    shift, scale = mod[..., :d], mod[..., d:]
    cases = {
        "row quantize (attention output, 4,096)": lambda: fp8.quantize_rows(x4),
        "GELU + row quantize (MLP, 16,384)": lambda: fp8.quantize_rows(xh, gelu=True),
        "modulated LayerNorm + quantize (4,096)": lambda: fp8.ln_modulate_quant(x3, shift, scale, 1e-6),
    }
    print(
        "\n| kernel | variant | us | bytes differing | values differing | scales equal |\n|---|---|---:|---:|---:|---|"
    )
    for name, fn in cases.items():
        base = None
        for label, hw, lut in VARIANTS:
            if lut and "GELU" not in name:
                continue
            _set(hw, lut)
            out = fn()
            us = timed(fn, 20, "cuda") * 1e6
            base = base or out
            nb = int((out.data.view(torch.uint8) != base.data.view(torch.uint8)).sum())
            nv = int((out.data.float() != base.data.float()).sum())
            same_s = torch.equal(out.scale, base.scale)
            print(f"| {name} | {label} | {us:.0f} | {nb} | {nv} | {same_s} |", flush=True)
    _set(True, True)
    gl = fp8.gelu_table(dev)
    xs = torch.arange(1 << 16, dtype=torch.int32, device=dev).to(torch.int16).view(torch.bfloat16)
    finite = torch.isfinite(xs)
    formula = (0.5 * xs.float() * (1 + torch.erf(xs.float() * 0.7071067811865476))).to(torch.bfloat16)
    diff = int((gl[finite].view(torch.int16) != formula[finite].view(torch.int16)).sum())
    print(
        f"\nGELU table vs the kernel's formula written in torch ops, finite bf16 inputs: {diff} of "
        f"{int(finite.sum())} differ"
    )


@torch.no_grad()
def gemm_accum_table(ms=(20480, 40960)) -> None:
    """``_scaled_mm`` with and without fast accumulation at the DiT's shapes: ms, TFLOP/s and the relative L2 error
    against the fp32 product of the same e4m3 operands (the error FP8 itself adds is the row-quantization's)."""
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(1)
    print(
        "\n| product | M | exact accumulation ms (TFLOP/s) | fast accumulation ms (TFLOP/s) | rel. error vs fp32 "
        "product: exact / fast | rel. error of e4m3 operands vs bf16 product |\n|---|---:|---:|---:|---|---:|"
    )
    for name, k, n in (("q/k/v/out", 4096, 4096), ("MLP up", 4096, 16384), ("MLP down", 16384, 4096)):
        w = (torch.randn(n, k, device=dev, generator=g) * 0.02).to(torch.bfloat16)
        wq = fp8.quantize_rows_eager(w)
        for m in ms:
            x = torch.randn(m, k, device=dev, generator=g).to(torch.bfloat16)
            xq = fp8.quantize_rows(x)
            ref = (xq.data.float() * xq.scale) @ (wq.data.float() * wq.scale).t()
            exact_bf = x.float() @ w.float().t()
            res = {}
            b8, sb = wq.data.t(), wq.scale.t().contiguous()
            for fast in (False, True):

                def mm(fast=fast, a=xq, b=b8, sb=sb):
                    return torch._scaled_mm(
                        a.data, b, scale_a=a.scale, scale_b=sb, out_dtype=torch.bfloat16, use_fast_accum=fast
                    )

                out = mm().float()
                res[fast] = (timed(mm, 10, "cuda"), ((out - ref).norm() / ref.norm()).item())
            fl = 2 * m * k * n
            (te, ee), (tf, ef) = res[False], res[True]
            op = ((ref - exact_bf).norm() / exact_bf.norm()).item()
            print(
                f"| {name} {k}->{n} | {m} | {te * 1e3:.3f} ({fl / te / 1e12:.0f}) | {tf * 1e3:.3f} "
                f"({fl / tf / 1e12:.0f}) | {ee:.2e} / {ef:.2e} | {op:.2e} |",
                flush=True,
            )
            del x, xq, ref, exact_bf


@torch.no_grad()
def forward_table(steps: int, preset: str, lat, dev: str, dt) -> None:
    net, inputs = build(preset, lat, dev, dt)
    net.set_kernels("auto")
    two = _batch2(inputs)
    ref = net(*two, context_rows=1).float()
    base_s = timed(lambda: net(*two, context_rows=1), steps, dev)
    net.set_gemm("fp8")
    linears = [m for m in net.modules() if isinstance(m, FP8Linear)]
    print(
        f"\n| DiT guided step (batch 2, {two[0].shape[2]}x{two[0].shape[3]}x{two[0].shape[4]} latent, FP8 GEMMs) | "
        "s | rel. L2 vs bf16 | rel. L2 vs FP8 as is |\n|---|---:|---:|---:|"
    )
    print(f"| bf16 GEMMs (reference) | {base_s:.3f} | - | - |", flush=True)
    fp8_ref = None
    for name, hw, lut, fast in (
        ("FP8 as in call b8 (written-out rounding, GELU formula, exact accumulation)", False, False, False),
        ("+ the GPU's rounding", True, False, False),
        ("+ the GELU table", True, True, False),
        ("+ fast accumulation (generate's FP8 mode now)", True, True, True),
        ("FP8 as in call b8, again", False, False, False),
    ):
        _set(hw, lut)
        for m in linears:
            m.fast_accum = fast
        sec = timed(lambda: net(*two, context_rows=1), steps, dev)
        out = net(*two, context_rows=1).float()
        fp8_ref = out if fp8_ref is None else fp8_ref
        rel = ((out - ref).norm() / ref.norm()).item()
        rel8 = ((out - fp8_ref).norm() / fp8_ref.norm()).item()
        print(f"| {name} | {sec:.3f} | {rel:.3e} | {rel8:.3e} |", flush=True)
    _set(True, True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--skip-exhaustive", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny preset: the forward table only (fast accumulation "
                    "and the GPU rounding do not exist there; checks the script runs)")  # fmt: skip
    args = ap.parse_args()
    if args.smoke:
        forward_table(1, "tiny", (4, 8, 8), "cpu", torch.float32)
        return
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}")
    if not args.skip_exhaustive:
        exhaustive_check()
    quantizer_table()
    gemm_accum_table()
    forward_table(args.steps, "7b", (8, 80, 128), "cuda", torch.bfloat16)
    _ = fused  # imported for the kernels' registry


if __name__ == "__main__":
    main()
