"""Matrix-vector products for the batch-1 decode step, as one Triton kernel (``y = W x`` with ``W [N, K]``).

At batch 1 a decode step's GEMMs are matrix-vector products that only read weights: the 4B's 8 GB per token. cuBLAS
reads the large ones (the MLP's) at about 4.0 TB/s on an H200, but the attention's QKV and output projections only at
3.0-3.2 TB/s, and the MLP's down projection adds a split-K reduce kernel (BENCHMARKS.md, issue 12 profile). Here each
program owns ``BLOCK_N`` whole rows of ``W`` (a Linear weight is row-major, so a row is one contiguous read), walks K
in ``BLOCK_K`` steps with an fp32 elementwise accumulator and reduces it once at the end: no split-K, no reduce
kernel, one launch per product. Block sizes come from a small autotuned set, keyed on the shape (tuned on the first
call, which the engine makes before any CUDA-graph capture; on the H200 it picks 2 rows x 1,024 columns, 4 warps, for
every 4B shape, the best of a 24-configuration sweep in bench/bench_gemv.py).

Optional fusions (``gemv``'s keywords): an RMSNorm or SwiGLU prologue and a residual-add epilogue, used by
``fused_step.run_layers_gemv``; measured slower than the plain kernel plus the fused step's own small kernels
(BENCHMARKS.md), so generation does not use them by default.

Triton is imported only when the kernel is first needed, so this module imports without it. On CPU tensors the kernel
runs in Triton's interpreter (tests, ``TRITON_INTERPRET=1``), with a fixed configuration.
"""

from __future__ import annotations

import os

import torch

_KERNEL: list = []


def _configs(triton) -> list:
    # Few configurations: each is timed once per weight shape on the first call (4 shapes for a model).
    out = []
    for block_n, block_k, warps in ((4, 512, 4), (8, 512, 4), (8, 256, 4), (16, 256, 8), (4, 1024, 8), (2, 1024, 4)):
        out.append(triton.Config({"BLOCK_N": block_n, "BLOCK_K": block_k}, num_warps=warps, num_stages=3))
    return out


def _build():
    if _KERNEL:
        return _KERNEL[0]
    import triton
    import triton.language as tl

    @triton.jit
    def gemv_kernel(
        x_ptr, w_ptr, y_ptr, g_ptr, r_ptr, N, K, stride_wn, eps,
        NORM: tl.constexpr, SWIGLU: tl.constexpr, RESIDUAL: tl.constexpr,
        BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):  # fmt: skip
        rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < N
        cols = tl.arange(0, BLOCK_K)
        w_rows = w_ptr + rows[:, None].to(tl.int64) * stride_wn
        acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
        ss = tl.zeros([BLOCK_K], tl.float32)
        for k0 in range(0, K, BLOCK_K):
            c = k0 + cols
            c_ok = c < K
            if SWIGLU:  # x = [gate, up]: silu(gate) * up, rounded once to x's dtype as the compiled SwiGLU does
                gate = tl.load(x_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
                up = tl.load(x_ptr + K + c, mask=c_ok, other=0.0).to(tl.float32)
                x = (gate * tl.sigmoid(gate) * up).to(x_ptr.dtype.element_ty).to(tl.float32)
            else:
                x = tl.load(x_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
            if NORM:  # RMSNorm: sum of squares beside the product; the 1/rms factor is applied once at the end
                ss += x * x
                x = x * tl.load(g_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
            w = tl.load(w_rows + c[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0.0)
            acc += w.to(tl.float32) * x[None, :]
        y = tl.sum(acc, 1)
        if NORM:
            y = y / tl.sqrt(tl.sum(ss, 0) / K + eps)
        if RESIDUAL:  # r + W x with W x rounded first: the unfused step's two roundings
            y = y.to(y_ptr.dtype.element_ty).to(tl.float32) + tl.load(r_ptr + rows, mask=row_ok, other=0.0).to(
                tl.float32
            )
        tl.store(y_ptr + rows, y.to(y_ptr.dtype.element_ty), mask=row_ok)

    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    tuned = (
        gemv_kernel
        if interpret
        else triton.autotune(configs=_configs(triton), key=["N", "K", "NORM", "SWIGLU", "RESIDUAL"])(gemv_kernel)
    )
    _KERNEL.append((gemv_kernel, tuned))
    return _KERNEL[0]


def gemv(
    x: torch.Tensor,
    weight: torch.Tensor,
    *,
    norm_weight: torch.Tensor | None = None,
    eps: float | None = None,
    swiglu: bool = False,
    residual: torch.Tensor | None = None,
    config: dict | None = None,
) -> torch.Tensor:
    """``F.linear(x, weight)`` for one row: ``x [..., K]`` with one row in all, ``weight [N, K]`` with a contiguous
    last dimension. Returns ``[..., N]`` in x's dtype; fp32 accumulation. Optional fusions, in this order:

    * ``swiglu``: x holds ``2K`` values ``[gate, up]`` and the product is taken with ``silu(gate) * up``;
    * ``norm_weight``/``eps``: with ``F.rms_norm(x, (K,), norm_weight, eps)`` (the normalised row is not rounded to
      x's dtype in between: the kernel scales the product by 1/rms instead);
    * ``residual [..., N]``: returns ``residual + W x`` (``W x`` rounded to x's dtype first, as two ops would).

    ``config`` (``BLOCK_N``, ``BLOCK_K``, ``num_warps``, ``num_stages``) skips autotuning (bench/bench_gemv.py).
    """
    n, k = weight.shape
    k_in = 2 * k if swiglu else k
    if x.shape[-1] != k_in or x.numel() != k_in:
        raise ValueError(
            f"gemv: x {tuple(x.shape)} must be one row of {k_in} values for a weight of {tuple(weight.shape)}"
        )
    if weight.stride(-1) != 1:
        raise ValueError("gemv: the weight's last dimension must be contiguous")
    if x.device != weight.device:
        raise ValueError(f"gemv: x is on {x.device}, the weight on {weight.device}")
    if norm_weight is not None and tuple(norm_weight.shape) != (k,):
        raise ValueError(f"gemv: norm_weight {tuple(norm_weight.shape)} must be ({k},)")
    if residual is not None and residual.numel() != n:
        raise ValueError(f"gemv: residual {tuple(residual.shape)} must hold {n} values")
    if x.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("gemv: CPU tensors run in Triton's interpreter: set TRITON_INTERPRET=1 first")
    plain, tuned = _build()
    xv = x.reshape(k_in).contiguous()
    g = norm_weight.contiguous() if norm_weight is not None else xv  # unused pointers when the fusion is off
    r = residual.reshape(n).contiguous() if residual is not None else xv
    eps = torch.finfo(x.dtype).eps if eps is None else float(eps)  # F.rms_norm's default
    y = torch.empty((*x.shape[:-1], n), dtype=x.dtype, device=x.device)
    flags = dict(NORM=norm_weight is not None, SWIGLU=swiglu, RESIDUAL=residual is not None)
    if config is not None:
        meta = dict(config)
        plain[(_cdiv(n, meta["BLOCK_N"]),)](xv, weight, y, g, r, n, k, weight.stride(0), eps, **flags, **meta)
    elif x.device.type == "cuda":
        grid = lambda meta: (_cdiv(n, meta["BLOCK_N"]),)  # noqa: E731
        tuned[grid](xv, weight, y, g, r, n, k, weight.stride(0), eps, **flags)
    else:  # the interpreter: one fixed configuration (autotuning would only time Python)
        block_n, block_k = 32, 128
        plain[(_cdiv(n, block_n),)](
            xv, weight, y, g, r, n, k, weight.stride(0), eps, **flags, BLOCK_N=block_n, BLOCK_K=block_k
        )
    return y


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)
