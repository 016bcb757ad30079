"""Where the 7B DiT's forward goes, and what cuDNN attention, FP8 GEMMs or compiled blocks would buy (issue 13).

One process, random weights at the real shapes (one chunk: 8x80x128 latent -> 20,480 tokens), batch 1 (the guidance
split's per-GPU pass). Prints four markdown tables:

1. ``attention``: torch SDPA on ``[1, 20480, 32, 128]`` q/k/v in the DiT's layout (transposed views) per backend:
   milliseconds, TFLOP/s and the max difference from the flash backend's output;
2. ``gemm``: the DiT's projection shapes at M = 20,480: bf16 ``torch.mm`` against FP8 (e4m3) ``torch._scaled_mm``
   with row-wise scales, and the cost of quantizing the activation (eager ops) per call;
3. ``forward``: the whole DiT forward (28 blocks) with the eager elementwise ops, with the Triton kernels of
   ``diffusion_decoder/fused.py``, and (``--compile``) with each block ``torch.compile``'d (compile seconds printed);
4. ``profile``: the forward's CUDA time by kernel class (GEMM, attention, elementwise/other) from torch.profiler,
   with the Triton kernels;
5. (``--fp8``) the one-GPU guidance batch of 2 with and without the unconditional pass's cross-attention, then with
   FP8 GEMMs (``diffusion_decoder/fp8.py``), and the FP8 forward's profile.

    python bench/bench_dd_kernels.py            # H200
    python bench/bench_dd_kernels.py --smoke --fp8   # CPU, tiny preset: checks the script runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nemo_cosmos_ar.diffusion_decoder import fp8 as fp8mod  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.config import get_dit_config  # noqa: E402
from nemo_cosmos_ar.diffusion_decoder.network import DiffusionDecoderDiT  # noqa: E402


def timed(fn, n: int, dev: str) -> float:
    """Median seconds of ``n`` calls after one warm-up."""
    out = []
    for i in range(n + 1):
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if dev == "cuda":
            torch.cuda.synchronize()
        if i:
            out.append(time.perf_counter() - t)
    return statistics.median(out)


def backends():
    from torch.nn.attention import SDPBackend

    return {
        "default order": None,
        "cudnn": [SDPBackend.CUDNN_ATTENTION],
        "flash": [SDPBackend.FLASH_ATTENTION],
        "efficient": [SDPBackend.EFFICIENT_ATTENTION],
    }


def ctx(order):
    import contextlib

    from torch.nn.attention import sdpa_kernel

    return contextlib.nullcontext() if order is None else sdpa_kernel(order, set_priority=True)


@torch.no_grad()
def attention_table(s: int, heads: int, d: int, dev: str, dt) -> None:
    g = torch.Generator(device=dev).manual_seed(0)
    q, k, v = (torch.randn(1, s, heads, d, device=dev, dtype=dt, generator=g).transpose(1, 2) for _ in range(3))
    flops = 4 * s * s * heads * d
    print("\n| attention backend | ms | TFLOP/s | max diff vs flash |\n|---|---:|---:|---:|")
    with ctx(backends()["flash"]) if dev == "cuda" else ctx(None):
        ref = F.scaled_dot_product_attention(q, k, v).float()
    for name, order in backends().items():
        try:
            with ctx(order):
                sec = timed(lambda: F.scaled_dot_product_attention(q, k, v), 5, dev)
                diff = (F.scaled_dot_product_attention(q, k, v).float() - ref).abs().max().item()
            print(f"| {name} | {sec * 1e3:.2f} | {flops / sec / 1e12:.0f} | {diff:.2e} |", flush=True)
        except RuntimeError as err:
            print(f"| {name} | - | - | {str(err).splitlines()[0][:80]} |")


def _gemm_row(name: str, m: int, k: int, n: int, dev: str, dt) -> str:
    fp8 = torch.float8_e4m3fn
    x = torch.randn(m, k, device=dev, dtype=dt)
    w = torch.randn(n, k, device=dev, dtype=dt) * 0.02
    bf = timed(lambda: x @ w.t(), 10, dev)
    ws = w.float().abs().amax(1, keepdim=True).clamp(min=1e-12) / 448.0
    w8 = (w.float() / ws).to(fp8)

    def quant():
        s = x.abs().amax(1, keepdim=True).float().clamp(min=1e-12) / 448.0
        return (x.float() / s).to(fp8), s

    x8, xs = quant()
    try:
        f8 = timed(lambda: torch._scaled_mm(x8, w8.t(), scale_a=xs, scale_b=ws.t(), out_dtype=dt), 10, dev)
    except RuntimeError as err:
        return f"| {name} | {bf * 1e3:.3f} | - | - | - | - | - | {str(err).splitlines()[0][:60]} |"
    qs = timed(quant, 10, dev)
    qk = timed(lambda: fp8mod.quantize_rows(x, "auto"), 10, dev)  # the Triton row-quantize kernel
    fl = 2 * m * k * n
    return (
        f"| {name} | {bf * 1e3:.3f} | {fl / bf / 1e12:.0f} | {f8 * 1e3:.3f} | {fl / f8 / 1e12:.0f} | "
        f"{qs * 1e3:.3f} | {qk * 1e3:.3f} | {bf / (f8 + qk):.2f}x |"
    )


@torch.no_grad()
def gemm_table(m: int, dim: int, dev: str, dt) -> None:
    print(
        f"\n| product (M={m}) | bf16 ms | bf16 TFLOP/s | fp8 ms | fp8 TFLOP/s | quantize x, eager ms | "
        "quantize x, Triton ms | fp8 + Triton quantize speed-up |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for name, k, n in (
        ("qkv/out 4096->4096", dim, dim),
        ("mlp up 4096->16384", dim, 4 * dim),
        ("mlp down 16384->4096", 4 * dim, dim),
    ):
        print(_gemm_row(name, m, k, n, dev, dt), flush=True)


def build(preset: str, lat, dev: str, dt):
    cfg = get_dit_config(preset)
    with torch.device(dev):
        net = DiffusionDecoderDiT(cfg)
    net = net.to(dt).eval().requires_grad_(False)
    g = torch.Generator(device=dev).manual_seed(0)
    t, h, w = lat
    x = torch.randn(1, cfg.latent_channels, t, h, w, device=dev, dtype=dt, generator=g)
    cx = torch.randn(1, 512, cfg.context_dim, device=dev, dtype=dt, generator=g)
    tok = torch.randint(0, cfg.token_vocab_size, (1, t, h // 2, w // 2), device=dev, generator=g)
    return net, (x, torch.tensor(0.5, device=dev, dtype=dt), cx, tok, 24)


@torch.no_grad()
def forward_table(net, inputs, dev: str, steps: int, compile_too: bool) -> None:
    """The whole forward with the eager elementwise ops, with the Triton kernels (``fused.py``) and, if asked, with
    compiled blocks (the SDPA inside prefers cuDNN: ``model/sdpa.py``)."""
    print("\n| DiT forward, batch 1 | s | max diff vs eager ops | compile s |\n|---|---:|---:|---:|")
    net.set_kernels("eager")
    sec = timed(lambda: net(*inputs), steps, dev)
    ref = net(*inputs).float()
    print(f"| eager elementwise ops | {sec:.3f} | - | - |", flush=True)
    net.set_kernels("auto")
    sec = timed(lambda: net(*inputs), steps, dev)
    diff = (net(*inputs).float() - ref).abs().max().item()
    print(f"| Triton kernels (fused.py) | {sec:.3f} | {diff:.2e} (output max {ref.abs().max().item():.2f}) | - |")
    if not compile_too:
        return
    net.set_kernels("eager")
    t = time.perf_counter()
    for block in net.blocks.values():
        block.compile()
    net(*inputs)
    if dev == "cuda":
        torch.cuda.synchronize()
    first = time.perf_counter() - t
    sec = timed(lambda: net(*inputs), steps, dev)
    print(f"| compiled blocks (eager ops inside) | {sec:.3f} | - | {first:.1f} |", flush=True)


def _batch2(inputs):
    """The one-GPU guidance batch: the conditional and the unconditional input (zero context, token 0)."""
    x, t, cx, tok, fps = inputs
    return (torch.cat([x, x]), t, torch.cat([cx, torch.zeros_like(cx)]), torch.cat([tok, torch.zeros_like(tok)]), fps)


@torch.no_grad()
def fp8_table(net, inputs, dev: str, steps: int) -> None:
    """The guidance batch of 2 (one GPU's step) in bf16 with and without the unconditional cross-attention skip,
    then the same with FP8 GEMMs (``fp8.py``; converts ``net`` for good), and FP8 at batch 1 (the split's pass);
    differences against the bf16 batch-2 output."""
    net.set_kernels("auto")
    two = _batch2(inputs)
    print("\n| DiT forward (Triton kernels) | s | max diff vs bf16 batch 2 | relative L2 diff |\n|---|---:|---:|---:|")
    sec = timed(lambda: net(*two), steps, dev)
    ref = net(*two).float()
    print(f"| bf16, batch 2 (guidance), every cross-attention | {sec:.3f} | - | - |", flush=True)

    def row(name, sec, out):
        d = out.float() - ref[: out.shape[0]]
        rel = (d.norm() / ref[: out.shape[0]].norm()).item()
        print(f"| {name} | {sec:.3f} | {d.abs().max().item():.3e} | {rel:.2e} |", flush=True)

    row("bf16, batch 2, unconditional cross-attention skipped", timed(lambda: net(*two, context_rows=1), steps, dev),
        net(*two, context_rows=1))  # fmt: skip
    t = time.perf_counter()
    net.set_gemm("fp8")
    if dev == "cuda":
        torch.cuda.synchronize()
    print(f"| (conversion to FP8: {time.perf_counter() - t:.2f} s) | | | |")
    row("fp8 GEMMs, batch 2, skipped", timed(lambda: net(*two, context_rows=1), steps, dev), net(*two, context_rows=1))
    row("fp8 GEMMs, batch 1 (conditional)", timed(lambda: net(*inputs), steps, dev), net(*inputs))


@torch.no_grad()
def profile_table(net, inputs, dev: str, label: str = "Triton kernels") -> None:
    from torch.profiler import ProfilerActivity, profile

    if dev != "cuda":
        return
    net.set_kernels("auto")
    with ctx(None):
        net(*inputs)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            net(*inputs)
            torch.cuda.synchronize()
    classes: dict[str, float] = {}
    top = []
    for ev in prof.key_averages():
        us = ev.device_time_total if hasattr(ev, "device_time_total") else ev.cuda_time_total
        if us <= 0:
            continue
        n = ev.key.lower()
        kind = (
            "attention"
            if any(s in n for s in ("flash", "fmha", "cudnn", "attention", "sdpa"))
            else "gemm"
            if any(s in n for s in ("gemm", "sm90", "cutlass", "nvjet", "xmma", "matmul"))
            else "elementwise/other"
        )
        classes[kind] = classes.get(kind, 0.0) + us
        top.append((us, ev.key[:90]))
    total = sum(classes.values())
    print(f"\n| kernel class (one forward, {label}) | ms | share |\n|---|---:|---:|")
    for kind, us in sorted(classes.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {us / 1e3:.1f} | {us / total:.0%} |")
    print("\ntop kernels:")
    for us, key in sorted(top, reverse=True)[:15]:
        print(f"  {us / 1e3:8.1f} ms  {key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny preset")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time compiled blocks (a 16 s compile)")
    ap.add_argument("--fp8", action="store_true", help="then the guidance batch, the cross-attention skip and FP8")
    args = ap.parse_args()
    dev = "cpu" if args.smoke else "cuda"
    dt = torch.float32 if args.smoke else torch.bfloat16
    preset, lat = ("tiny", (4, 8, 8)) if args.smoke else ("7b", (8, 80, 128))
    cfg = get_dit_config(preset)
    s = lat[0] * lat[1] * lat[2] // cfg.patch_spatial**2
    print(
        f"# DiT kernels, {torch.cuda.get_device_name() if dev == 'cuda' else 'CPU'}, torch {torch.__version__}, "
        f"{s} tokens, batch 1"
    )
    attention_table(s, cfg.num_heads, cfg.head_dim, dev, dt)
    gemm_table(s, cfg.model_channels, dev, dt) if dev == "cuda" else None
    net, inputs = build(preset, lat, dev, dt)
    forward_table(net, inputs, dev, args.steps, args.compile and not args.fp8)
    profile_table(net, inputs, dev)
    if args.fp8:
        fp8_table(net, inputs, dev, args.steps)
        profile_table(net, inputs, dev, "FP8 GEMMs + Triton kernels")


if __name__ == "__main__":
    main()
