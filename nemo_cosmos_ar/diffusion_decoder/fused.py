"""The DiT's elementwise work as three Triton kernels on the GPU (``kernels="auto"``), the eager ops elsewhere.

Why: a forward of the 7B DiT at one 20,480-token chunk spends ~200 ms of its ~960 ms outside the GEMMs and the
attention (BENCHMARKS.md, issue 13: ``bench/bench_dd_kernels.py``; compiled blocks, which fuse these ops, take
766 ms). Most of it is the per-head RMSNorm of q and k and the 3D RoPE, computed in fp32 over ``[S, 32, 128]``
tensors by a dozen separate kernels, then the modulated LayerNorm and the gated residual of each of the 84
sub-blocks. Each kernel here reads its inputs once and writes once:

* ``qk_norm_rope``: RMSNorm over the head dim (fp32, rounded to the activation dtype as the eager module does), then
  rotate-half RoPE by fp32 cos/sin (self-attention q and k; cross-attention q without RoPE);
* ``ln_modulate``: ``layer_norm(x) * (1 + scale) + shift``;
* ``gate_residual``: ``x + gate * y``.

They round every intermediate the eager code rounds, so they match it up to the order of the fp32 sums inside a
norm. Triton is imported on first use; without it, on CPU tensors (unless ``TRITON_INTERPRET=1``, the tests) or with
``kernels="eager"`` the eager ops run, which are the reference definitions below.
"""

from __future__ import annotations

import importlib.util
import os

import torch
import torch.nn.functional as F

KERNELS = ("auto", "eager")
_K: dict = {}


def triton_kernels():
    if not _K:
        from nemo_cosmos_ar.diffusion_decoder import fused_triton

        _K.update(
            qk=fused_triton.qk_norm_rope_kernel,
            ln=fused_triton.ln_modulate_kernel,
            gate=fused_triton.gate_residual_kernel,
            quant=fused_triton.quant_rows_kernel,
        )
    return _K


def use_triton(x: torch.Tensor, kernels: str) -> bool:
    """Whether ``kernels`` means the Triton kernels for ``x``: "auto" on CUDA (or CPU under Triton's interpreter)
    when Triton is importable."""
    if kernels == "eager":
        return False
    if kernels != "auto":
        raise ValueError(f"unknown DiT kernels {kernels!r}; choose one of {KERNELS}")
    where = x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"
    return where and importlib.util.find_spec("triton") is not None


# ---- eager definitions (the reference; what runs without Triton) ----
def rms_norm_eager(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (y * weight.float()).to(x.dtype)


def rope_eager(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE of ``x [B, S, heads, D]`` by fp32 ``cos``/``sin [S, 1, D]``; computed in fp32."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)


def layer_norm_eager(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


# ---- dispatchers ----
def qk_norm_rope(
    x: torch.Tensor, weight: torch.Tensor, eps: float, rope: tuple | None, kernels: str = "auto"
) -> torch.Tensor:
    """``[B, S, heads, D]`` -> RMSNorm over D with gain ``weight``, then RoPE by ``rope = (cos, sin)`` if given."""
    if not use_triton(x, kernels):
        y = rms_norm_eager(x, weight, eps)
        return rope_eager(y, *rope) if rope is not None else y
    b, s, h, d = x.shape
    x = x.contiguous()
    out = torch.empty_like(x)
    if rope is not None:
        cos, sin = (t.reshape(s, d).float().contiguous() for t in rope)
    else:
        cos = sin = x  # not read
    rows, block_r = b * s * h, 16
    half = d // 2
    triton_kernels()["qk"][(_cdiv(rows, block_r),)](
        x, weight, cos, sin, out, rows, h, s, eps,
        D=d, HALF=half, BLOCK_HALF=pow2(half), BLOCK_R=block_r, ROPE=rope is not None, num_warps=4,
    )  # fmt: skip
    return out


def ln_modulate(
    x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, eps: float, kernels: str = "auto"
) -> torch.Tensor:
    """``layer_norm(x) * (1 + scale) + shift`` for ``x [B, S, D]`` and ``shift``/``scale [B, 1, D]``."""
    if not use_triton(x, kernels):
        return layer_norm_eager(x, eps) * (1 + scale) + shift
    b, s, d = x.shape
    x = x.contiguous()
    out = torch.empty_like(x)
    stride = mod_stride(shift, scale)
    triton_kernels()["ln"][(b * s,)](
        x, shift, scale, out, out, s, d, stride, eps, 0.0, BLOCK_D=pow2(d), QUANT=False, num_warps=num_warps_for(d)
    )
    return out


def gate_residual(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, kernels: str = "auto") -> torch.Tensor:
    """``x + gate * y`` for ``x``, ``y [B, S, D]`` and ``gate [B, 1, D]``."""
    if not use_triton(x, kernels):
        return x + gate * y
    b, s, d = x.shape
    x, y = x.contiguous(), y.contiguous()
    out = torch.empty_like(x)
    triton_kernels()["gate"][(b * s,)](
        x, y, gate, out, s, d, mod_stride(gate), BLOCK_D=pow2(d), num_warps=num_warps_for(d)
    )
    return out


def mod_stride(*mods: torch.Tensor) -> int:
    """The batch stride of adaLN chunks ``[B, 1, D]`` (views of one ``[B, 1, k*D]`` tensor; unit stride along D)."""
    stride = mods[0].stride(0)
    for m in mods:
        if m.stride(-1) != 1 or m.stride(0) != stride or m.shape[1] != 1:
            raise ValueError(f"adaLN modulation of shape {tuple(m.shape)} strides {m.stride()} is not [B, 1, D] rows")
    return stride


def pow2(n: int) -> int:
    return 1 << (max(1, n) - 1).bit_length()


def num_warps_for(d: int) -> int:
    return 8 if d >= 2048 else 4


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)
