"""Matrix-vector products for the batch-1 decode step, as one Triton kernel (``y = W x`` with ``W [N, K]``).

At batch 1 a decode step's GEMMs are matrix-vector products that only read weights: the 4B's 8 GB per token. cuBLAS
reads the large ones (the MLP's) at about 4.0 TB/s on an H200, but the attention's QKV and output projections only at
3.0-3.2 TB/s, and the MLP's down projection adds a split-K reduce kernel (BENCHMARKS.md, issue 12 profile). Here each
program owns ``BLOCK_N`` whole rows of ``W`` (a Linear weight is row-major, so a row is one contiguous read), walks K
in ``BLOCK_K`` steps with an fp32 elementwise accumulator and reduces it once at the end: no split-K, no reduce
kernel, one launch per product. Blocks: ``DEFAULT_CONFIG`` (2 rows x 1,024 columns, 4 warps: the best of a
24-configuration sweep on the H200 for every 4B shape, bench/bench_gemv.py), except the 4B shapes in
``SHAPE_CONFIGS`` (4 x 2,048, faster end to end in a later measurement).

Fusions (``gemv``'s keywords):

* ``glu``: fc1 and SwiGLU in one kernel. Each program owns gate rows and their up rows and writes
  ``silu(gate) * up``: one launch and the 2F-wide intermediate less per layer, but measured slower on the H200 (the
  two row streams per program read slower; BENCHMARKS.md), so only an option (``McoreEngine.gemv_glu``).
* an RMSNorm or SwiGLU prologue and a residual-add epilogue, used by ``fused_step.run_layers_gemv``; measured slower
  than the plain kernel plus the fused step's own small kernels (the prologues are recomputed by every program;
  BENCHMARKS.md), so generation does not use them by default.
* ``pdl``: programmatic dependent launch (Hopper): the first weight tile is read before waiting for the kernel
  before, so a product's weight stream starts while the previous kernel drains.
* ``scale``: the weight is int8 with one fp32 scale per row (``quant.py``, ``--decode-weights int8``): half the
  bytes of bf16 per product. The kernel reads the rows as int32 words of 4 columns (when K is a multiple of 4),
  turns each byte into fp32 with shifts and a float-bits trick (``gemv_triton.unpack_int8``: the int-to-float
  conversion instruction runs at a quarter of the FMA rate and held the kernel at ~2.9 TB/s), accumulates as for
  bf16 and multiplies the row sums by the rows' scales before the epilogue (norm, GLU, residual). Its blocks are
  ``INT8_CONFIG``.

Triton is imported only when the kernel is first needed, so this module imports without it. On CPU tensors the kernel
runs in Triton's interpreter (tests, ``TRITON_INTERPRET=1``), with a fixed configuration.
"""

from __future__ import annotations

import os

import torch

_KERNEL: list = []

# Blocks per program: 2 rows x 1,024 columns, 4 warps. On the H200 an autotuner picked it for every 4B shape and it
# was the best of a 24-configuration sweep (bench/bench_gemv.py sweeps them); a fixed choice spares generate's first
# step the ~24 s of compiling and timing alternatives on a fresh machine (BENCHMARKS.md, issue 13).
DEFAULT_CONFIG = {"BLOCK_N": 2, "BLOCK_K": 1024, "num_warps": 4, "num_stages": 3}
# Int8 weights, read as int32 words: 8 rows x 2,048 columns, 4 warps. The best of the H200 sweep for fc1
# (35.2 us, 3.34 TB/s, against 41.0 us for the byte-wise kernel's best) and near it for QKV (8 x 1,024: 10.2 us);
# with 2 rows the word-wise kernel was slower than the byte-wise one (bench/bench_gemv.py --weights int8).
INT8_CONFIG = {"BLOCK_N": 8, "BLOCK_K": 2048, "num_warps": 4, "num_stages": 3}


# Blocks for particular (N, K, int8) products, over the defaults above: the 4B's bf16 attention-out, fc1, fc2 and
# output layer at TP=1 read faster in 4-row x 2,048-column blocks (bench_gemv's sweep, call c6: fc2 30.8 -> 28.3 us)
# and the whole batch-1 decode went 406.7 / 407.0 -> 415.6 / 415.6 tokens/s (bench_generate, call g6;
# BENCHMARKS.md, issue 13). Other shapes (TP=2 halves, the 12B) keep the defaults.
SHAPE_CONFIGS: dict[tuple[int, int, bool], dict] = {
    (4096, 4096, False): {"BLOCK_N": 4, "BLOCK_K": 2048, "num_warps": 4, "num_stages": 3},
    (28672, 4096, False): {"BLOCK_N": 4, "BLOCK_K": 2048, "num_warps": 8, "num_stages": 3},
    (4096, 14336, False): {"BLOCK_N": 4, "BLOCK_K": 2048, "num_warps": 4, "num_stages": 3},
    (64000, 4096, False): {"BLOCK_N": 4, "BLOCK_K": 2048, "num_warps": 8, "num_stages": 3},
}


def _build():
    if not _KERNEL:
        from nemo_cosmos_ar.inference.gemv_triton import gemv_kernel

        _KERNEL.append(gemv_kernel)
    return _KERNEL[0]


def gemv(
    x: torch.Tensor,
    weight: torch.Tensor,
    *,
    norm_weight: torch.Tensor | None = None,
    eps: float | None = None,
    swiglu: bool = False,
    residual: torch.Tensor | None = None,
    glu: bool = False,
    scale: torch.Tensor | None = None,
    pdl: bool = False,
    config: dict | None = None,
) -> torch.Tensor:
    """``F.linear(x, weight)`` for one row: ``x [..., K]`` with one row in all, ``weight [N, K]`` with a contiguous
    last dimension. Returns ``[..., N]`` in x's dtype; fp32 accumulation. Optional fusions, in this order:

    * ``swiglu``: x holds ``2K`` values ``[gate, up]`` and the product is taken with ``silu(gate) * up``;
    * ``norm_weight``/``eps``: with ``F.rms_norm(x, (K,), norm_weight, eps)`` (the normalised row is not rounded to
      x's dtype in between: the kernel scales the product by 1/rms instead);
    * ``glu``: the weight holds ``[W_gate; W_up]`` (``N = 2F`` rows, Megatron's fused fc1) and the result is
      ``silu(W_gate x) * (W_up x)`` of ``F`` values, each product rounded to x's dtype first: exactly what the fc1
      product followed by the fused step's SwiGLU kernel computes, in one kernel with no ``2F``-wide intermediate;
    * ``residual [..., N]``: returns ``residual + W x`` (``W x`` rounded to x's dtype first, as two ops would).

    ``scale [N]`` (fp32, contiguous): ``weight`` is int8 and stands for ``weight * scale[:, None]`` (per-row
    symmetric quantization, ``quant.quantize_rows``); with ``glu`` the up rows' scales follow the gate rows'.

    ``pdl``: launch with programmatic dependent launch (Hopper and later, CUDA only): the kernel may start while
    the kernel before it finishes, loads its first weight tile, then waits for that kernel's writes
    (``griddepcontrol.wait``) before reading anything else; it lets the next kernel launch early in turn.
    ``config`` (``BLOCK_N``, ``BLOCK_K``, ``num_warps``, ``num_stages``) overrides the blocks: else
    ``SHAPE_CONFIGS`` for this shape, else ``DEFAULT_CONFIG`` (int8: ``INT8_CONFIG``).
    """
    n, k = weight.shape
    if (weight.dtype == torch.int8) != (scale is not None):
        raise ValueError(
            f"gemv: an int8 weight needs its per-row scale and only an int8 weight takes one (weight {weight.dtype}, "
            f"scale {'given' if scale is not None else 'missing'})"
        )
    if scale is not None and (scale.dtype != torch.float32 or tuple(scale.shape) != (n,) or scale.stride(0) != 1):
        raise ValueError(
            f"gemv: scale must be a contiguous float32 ({n},) for a weight of {tuple(weight.shape)}, got "
            f"{scale.dtype} {tuple(scale.shape)}"
        )
    if scale is not None and scale.device != weight.device:
        raise ValueError(f"gemv: the scale is on {scale.device}, the weight on {weight.device}")
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
    if glu and n % 2:
        raise ValueError(f"gemv: glu needs a weight of [gate; up] rows (an even count), got {tuple(weight.shape)}")
    n_out = n // 2 if glu else n
    if residual is not None and residual.numel() != n_out:
        raise ValueError(f"gemv: residual {tuple(residual.shape)} must hold {n_out} values")
    if x.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("gemv: CPU tensors run in Triton's interpreter: set TRITON_INTERPRET=1 first")
    kernel = _build()
    xv = x.reshape(k_in).contiguous()
    g = norm_weight.contiguous() if norm_weight is not None else xv  # unused pointers when the fusion is off
    r = residual.reshape(n_out).contiguous() if residual is not None else xv
    eps = torch.finfo(x.dtype).eps if eps is None else float(eps)  # F.rms_norm's default
    y = torch.empty((*x.shape[:-1], n_out), dtype=x.dtype, device=x.device)
    scaled = scale is not None
    # int8 rows read as int32 words of 4 columns (gemv_triton.unpack_int8) when the layout allows it
    packed = scaled and k % 4 == 0 and weight.stride(0) % 4 == 0 and weight.data_ptr() % 4 == 0
    w_arg, w_stride = (weight.view(torch.int32), weight.stride(0) // 4) if packed else (weight, weight.stride(0))
    flags = dict(NORM=norm_weight is not None, SWIGLU=swiglu, RESIDUAL=residual is not None, GLU=glu, SCALED=scaled)
    flags["PACKED"] = packed
    args = (xv, w_arg, y, g, r, scale if scaled else xv, n_out, k, w_stride, eps)
    if x.device.type != "cuda":  # the interpreter: one fixed small configuration
        kernel[(_cdiv(n_out, 32),)](*args, **flags, PDL=False, BLOCK_N=32, BLOCK_K=128)
        return y
    meta = dict(config or SHAPE_CONFIGS.get((n, k, scaled)) or (INT8_CONFIG if scaled else DEFAULT_CONFIG))
    launch = {"launch_pdl": True} if pdl else {}
    kernel[(_cdiv(n_out, meta["BLOCK_N"]),)](*args, **flags, PDL=pdl, **meta, **launch)
    return y


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)
