"""The Triton source of ``gemv.gemv`` (imported on first use only: this module imports Triton at the top, so the
kernels' helper is a module global that Triton resolves; whether they run in the interpreter is decided here, at
import, from ``TRITON_INTERPRET``)."""

import triton
import triton.language as tl


@triton.jit
def x_chunk(x_ptr, g_ptr, c, c_ok, K, NORM: tl.constexpr, SWIGLU: tl.constexpr):
    """``BLOCK_K`` values of the input row (after the SwiGLU / RMSNorm-weight prologue) and their squares."""
    if SWIGLU:  # x = [gate, up]: silu(gate) * up, rounded once to x's dtype as the compiled SwiGLU does
        gate = tl.load(x_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
        up = tl.load(x_ptr + K + c, mask=c_ok, other=0.0).to(tl.float32)
        x = (gate * tl.sigmoid(gate) * up).to(x_ptr.dtype.element_ty).to(tl.float32)
    else:
        x = tl.load(x_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
    sq = x * x  # RMSNorm: sum of squares beside the product; the 1/rms factor is applied once at the end
    if NORM:
        x = x * tl.load(g_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
    return x, sq


@triton.jit
def unpack_int8(w32, j: tl.constexpr):
    """Byte ``j`` of each int32 word (little-endian: column ``4 c + j``) as the fp32 value of its signed int8: two
    shifts sign-extend it, then adding it to the bits of 1.5 * 2^23 and subtracting that float gives its value
    exactly. Integer and FMA-rate work instead of the int-to-float conversion, which runs at a quarter of that rate
    and held the int8 kernel at ~2.9 TB/s against bf16's ~4.3 (BENCHMARKS.md, issue 13)."""
    b = (w32 << (24 - 8 * j)) >> 24
    return (b + 0x4B400000).to(tl.float32, bitcast=True) - 12582912.0


@triton.jit
def mac(acc, acc_u, w, wu, x_ptr, g_ptr, c, c_ok, K,
        NORM: tl.constexpr, SWIGLU: tl.constexpr, GLU: tl.constexpr, PACKED: tl.constexpr):  # fmt: skip
    """``acc (+)= w * x`` for one tile (and the up rows' ``acc_u`` with GLU); returns ``(acc, acc_u, x squares)``.
    ``PACKED``: ``w`` holds int32 words of 4 int8 columns each and ``c`` counts words; else ``c`` counts columns."""
    if PACKED:
        x, ss = x_chunk(x_ptr, g_ptr, 4 * c, c_ok, K, NORM, SWIGLU)
        acc += unpack_int8(w, 0) * x[None, :]
        if GLU:
            acc_u += unpack_int8(wu, 0) * x[None, :]
        for j in tl.static_range(1, 4):
            x, sq = x_chunk(x_ptr, g_ptr, 4 * c + j, c_ok, K, NORM, SWIGLU)
            ss += sq
            acc += unpack_int8(w, j) * x[None, :]
            if GLU:
                acc_u += unpack_int8(wu, j) * x[None, :]
    else:
        x, ss = x_chunk(x_ptr, g_ptr, c, c_ok, K, NORM, SWIGLU)
        acc += w.to(tl.float32) * x[None, :]
        if GLU:
            acc_u += wu.to(tl.float32) * x[None, :]
    return acc, acc_u, ss


@triton.jit
def gemv_kernel(
    x_ptr, w_ptr, y_ptr, g_ptr, r_ptr, s_ptr, N, K, stride_wn, eps,
    NORM: tl.constexpr, SWIGLU: tl.constexpr, RESIDUAL: tl.constexpr, GLU: tl.constexpr, PDL: tl.constexpr,
    SCALED: tl.constexpr, PACKED: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """``PACKED`` (int8 weights only): ``w_ptr`` is the weight viewed as int32 words, ``stride_wn`` counts words, and
    each tile of ``BLOCK_K`` columns is ``BLOCK_K / 4`` words."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # output rows (GLU: gate rows; up rows N later)
    row_ok = rows < N
    TILE: tl.constexpr = BLOCK_K // 4 if PACKED else BLOCK_K
    K_T = K // 4 if PACKED else K  # words or columns per row
    cols = tl.arange(0, TILE)
    w_rows = w_ptr + rows[:, None].to(tl.int64) * stride_wn
    u_rows = w_rows + N * stride_wn.to(tl.int64)  # GLU only
    # The first weight tile is loaded before anything an earlier kernel writes: with programmatic dependent
    # launch (PDL) the program starts while the kernel before it drains, and streams weights meanwhile.
    c_ok = cols < K_T
    w = tl.load(w_rows + cols[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0)
    wu = w
    if GLU:
        wu = tl.load(u_rows + cols[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0)
    if PDL:  # from here on: the earlier kernels' writes are visible; let the next kernel launch early
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    acc = tl.zeros([BLOCK_N, TILE], dtype=tl.float32)
    acc_u = tl.zeros([BLOCK_N, TILE], dtype=tl.float32)
    acc, acc_u, ss = mac(acc, acc_u, w, wu, x_ptr, g_ptr, cols, c_ok, K, NORM, SWIGLU, GLU, PACKED)
    for k0 in range(TILE, K_T, TILE):
        c = k0 + cols
        c_ok = c < K_T
        w = tl.load(w_rows + c[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0)
        if GLU:
            wu = tl.load(u_rows + c[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0)
        acc, acc_u, sq = mac(acc, acc_u, w, wu, x_ptr, g_ptr, c, c_ok, K, NORM, SWIGLU, GLU, PACKED)
        ss += sq
    y = tl.sum(acc, 1)
    if SCALED:  # int8 weight: the row sums of q x times the rows' fp32 scales (gate rows here, up rows N later)
        y = y * tl.load(s_ptr + rows, mask=row_ok, other=0.0)
    if NORM:
        y = y / tl.sqrt(tl.sum(ss, 0) / K + eps)
    if GLU:  # silu(gate) * up of the two products, each rounded to the output dtype first (as two kernels would)
        gate = y.to(y_ptr.dtype.element_ty).to(tl.float32)
        up = tl.sum(acc_u, 1)
        if SCALED:
            up = up * tl.load(s_ptr + N + rows, mask=row_ok, other=0.0)
        if NORM:
            up = up / tl.sqrt(tl.sum(ss, 0) / K + eps)
        up = up.to(y_ptr.dtype.element_ty).to(tl.float32)
        y = gate * tl.sigmoid(gate) * up
    if RESIDUAL:  # r + W x with W x rounded first: the unfused step's two roundings
        y = y.to(y_ptr.dtype.element_ty).to(tl.float32) + tl.load(r_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)
    tl.store(y_ptr + rows, y.to(y_ptr.dtype.element_ty), mask=row_ok)
