"""The Triton source of ``fused.py``'s kernels (imported on first use only: this module imports Triton at the top).

Each kernel reproduces the eager ops' roundings: where the eager code rounds an intermediate to the activation dtype
(bf16 on the GPU), the kernel rounds it too (``.to(dtype).to(fp32)``), so the result differs from eager only by the
order of the fp32 sums inside a norm (an occasional one-unit difference in the last place of a bf16 value).
"""

import triton
import triton.language as tl


@triton.jit
def qk_norm_rope_kernel(
    x_ptr, w_ptr, cos_ptr, sin_ptr, y_ptr, R, H, S, eps,
    D: tl.constexpr, HALF: tl.constexpr, BLOCK_HALF: tl.constexpr, BLOCK_R: tl.constexpr, ROPE: tl.constexpr,
):  # fmt: skip
    """Rows of ``D`` (one head of one token each, ``[B, S, H, D]`` contiguous): RMSNorm with gain ``w`` in fp32,
    rounded to the output dtype, then (``ROPE``) rotate-half RoPE by the token's fp32 ``cos``/``sin [S, D]``."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_ok = rows < R
    j = tl.arange(0, BLOCK_HALF)
    j_ok = j < HALF
    ok = row_ok[:, None] & j_ok[None, :]
    base = x_ptr + rows[:, None].to(tl.int64) * D + j[None, :]
    x1 = tl.load(base, mask=ok, other=0.0).to(tl.float32)
    x2 = tl.load(base + HALF, mask=ok, other=0.0).to(tl.float32)
    ss = tl.sum(x1 * x1, axis=1) + tl.sum(x2 * x2, axis=1)
    r = tl.rsqrt(ss / D + eps)[:, None]
    w1 = tl.load(w_ptr + j, mask=j_ok, other=0.0).to(tl.float32)[None, :]
    w2 = tl.load(w_ptr + HALF + j, mask=j_ok, other=0.0).to(tl.float32)[None, :]
    dt = y_ptr.dtype.element_ty
    y1 = ((x1 * r) * w1).to(dt, fp_downcast_rounding="rtne").to(tl.float32)  # the eager RMSNorm's output, rounded
    y2 = ((x2 * r) * w2).to(dt, fp_downcast_rounding="rtne").to(tl.float32)
    if ROPE:
        s = (rows // H) % S
        cs = s[:, None].to(tl.int64) * D + j[None, :]
        c1 = tl.load(cos_ptr + cs, mask=ok, other=0.0)
        c2 = tl.load(cos_ptr + cs + HALF, mask=ok, other=0.0)
        s1 = tl.load(sin_ptr + cs, mask=ok, other=0.0)
        s2 = tl.load(sin_ptr + cs + HALF, mask=ok, other=0.0)
        o1 = y1 * c1 + (-y2) * s1
        o2 = y2 * c2 + y1 * s2
    else:
        o1, o2 = y1, y2
    out = y_ptr + rows[:, None].to(tl.int64) * D + j[None, :]
    tl.store(out, o1.to(dt, fp_downcast_rounding="rtne"), mask=ok)
    tl.store(out + HALF, o2.to(dt, fp_downcast_rounding="rtne"), mask=ok)


@triton.jit
def _round_e4m3(q):
    """fp32 ``q`` (|q| <= 448) rounded to the nearest e4m3 value, ties to even, still in fp32, so the conversion
    that follows is exact. Why not let the conversion round: Triton's CPU interpreter drops the carry when a value
    rounds up to the next power of two (124.7 -> 64), and this way the GPU's result does not depend on the
    conversion's rounding mode either."""
    bits = q.to(tl.int32, bitcast=True)
    # normals (|q| >= 2^-6): keep 3 of fp32's 23 mantissa bits, half to even; a carry moves into the exponent
    normal = ((bits + 0x7FFFF + ((bits >> 20) & 1)) & -0x100000).to(tl.float32, bitcast=True)
    # subnormals: multiples of 2^-9, rounded half to even by the 1.5 * 2^23 trick
    sub = ((q * 512.0 + 12582912.0) - 12582912.0) * 0.001953125
    return tl.where(tl.abs(q) >= 0.015625, normal, sub)


@triton.jit
def _fp8_row(v, ok, q_ptrs, s_ptr, min_scale, HW_ROUND: tl.constexpr):
    """Quantize one fp32 row ``v`` to e4m3 with the scale ``max(amax * (1/448), min_scale)`` (as ``fp8.py``'s eager
    reference: the quotient by IEEE division, clamped to +-448) and store the row and its scale.

    ``HW_ROUND`` (GPU): the conversion rounds, to nearest even as ``_round_e4m3`` does: on every fp32 value in +-448
    the two give the same value (``bench/bench_dd_fp8_speedups.py``; only a zero's sign can differ: the conversion
    keeps the quotient's, the written-out rounding gives +0), 20-35% faster. Else ``_round_e4m3`` first (the CPU
    interpreter drops a carry when it converts)."""
    amax = tl.max(tl.where(ok, tl.abs(v), 0.0), axis=0)
    sc = tl.maximum(amax * 0.002232142857142857, min_scale)  # 1/448, rounded to fp32 as torch rounds the scalar
    q = tl.minimum(tl.maximum(tl.math.div_rn(v, sc), -448.0), 448.0)
    if HW_ROUND:
        tl.store(q_ptrs, q.to(tl.float8e4nv, fp_downcast_rounding="rtne"), mask=ok)
    else:
        tl.store(q_ptrs, _round_e4m3(q).to(tl.float8e4nv), mask=ok)
    tl.store(s_ptr, sc)


@triton.jit
def ln_modulate_kernel(
    x_ptr, shift_ptr, scale_ptr, y_ptr, ys_ptr, S, D, stride_mod, eps, min_scale,
    BLOCK_D: tl.constexpr, QUANT: tl.constexpr, HW_ROUND: tl.constexpr = False,
):  # fmt: skip
    """One token's row: ``layer_norm(x) * (1 + scale) + shift`` (no affine), each op rounded as in eager to the
    modulation's dtype (the model's); ``shift``/``scale`` are the row's batch entry (``stride_mod`` apart). ``QUANT``:
    store the row in e4m3 with its scale at ``ys_ptr`` (``fp8.ln_modulate_quant``) instead."""
    row = tl.program_id(0)
    b = row // S
    c = tl.arange(0, BLOCK_D)
    ok = c < D
    x = tl.load(x_ptr + row.to(tl.int64) * D + c, mask=ok, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=0) / D
    xc = tl.where(ok, x - mean, 0.0)
    var = tl.sum(xc * xc, axis=0) / D
    dt = shift_ptr.dtype.element_ty
    ln = (xc * tl.rsqrt(var + eps)).to(dt, fp_downcast_rounding="rtne").to(tl.float32)
    sc = tl.load(scale_ptr + b * stride_mod + c, mask=ok, other=0.0).to(tl.float32)
    sh = tl.load(shift_ptr + b * stride_mod + c, mask=ok, other=0.0).to(tl.float32)
    t = (1.0 + sc).to(dt, fp_downcast_rounding="rtne").to(tl.float32)
    m = (ln * t).to(dt, fp_downcast_rounding="rtne").to(tl.float32)
    y = (m + sh).to(dt, fp_downcast_rounding="rtne")
    if QUANT:
        _fp8_row(y.to(tl.float32), ok, y_ptr + row.to(tl.int64) * D + c, ys_ptr + row, min_scale, HW_ROUND)
    else:
        tl.store(y_ptr + row.to(tl.int64) * D + c, y, mask=ok)


@triton.jit
def quant_rows_kernel(
    x_ptr, q_ptr, s_ptr, D, min_scale, lut_ptr, BLOCK_D: tl.constexpr, GELU: tl.constexpr,
    HW_ROUND: tl.constexpr = False, LUT: tl.constexpr = False,
):  # fmt: skip
    """One row of ``x`` (or of exact ``gelu(x)``, rounded to ``x``'s dtype as eager GELU is) to e4m3 with its scale.
    ``LUT`` (GELU of a 16-bit ``x``, GPU): ``gelu(x)`` read from ``lut_ptr``, eager GELU of all 65,536 values
    (``fp8.gelu_table``), so it equals eager exactly (the erf formula here differs from eager in the last bf16 place
    for ~1 value in 10,000) and the kernel is 2x faster (the erf was most of its work)."""
    row = tl.program_id(0)
    c = tl.arange(0, BLOCK_D)
    ok = c < D
    xin = tl.load(x_ptr + row.to(tl.int64) * D + c, mask=ok, other=0.0)
    if GELU:
        if LUT:
            bits = xin.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
            x = tl.load(lut_ptr + bits, mask=ok, other=0.0).to(tl.float32)
        else:
            x = xin.to(tl.float32)
            g = 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))
            x = g.to(x_ptr.dtype.element_ty, fp_downcast_rounding="rtne").to(tl.float32)
    else:
        x = xin.to(tl.float32)
    _fp8_row(x, ok, q_ptr + row.to(tl.int64) * D + c, s_ptr + row, min_scale, HW_ROUND)


@triton.jit
def gate_residual_kernel(
    x_ptr, y_ptr, gate_ptr, out_ptr, S, D, stride_mod, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """One token's row: ``x + gate * y``, the product rounded before the sum as in eager."""
    row = tl.program_id(0)
    b = row // S
    c = tl.arange(0, BLOCK_D)
    ok = c < D
    at = row.to(tl.int64) * D + c
    x = tl.load(x_ptr + at, mask=ok, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + at, mask=ok, other=0.0).to(tl.float32)
    g = tl.load(gate_ptr + b * stride_mod + c, mask=ok, other=0.0).to(tl.float32)
    dt = out_ptr.dtype.element_ty
    gy = (g * y).to(dt, fp_downcast_rounding="rtne").to(tl.float32)
    tl.store(out_ptr + at, (x + gy).to(dt, fp_downcast_rounding="rtne"), mask=ok)
