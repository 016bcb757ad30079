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
def gemv_kernel(
    x_ptr, w_ptr, y_ptr, g_ptr, r_ptr, s_ptr, N, K, stride_wn, eps,
    NORM: tl.constexpr, SWIGLU: tl.constexpr, RESIDUAL: tl.constexpr, GLU: tl.constexpr, PDL: tl.constexpr,
    SCALED: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # output rows (GLU: gate rows; up rows N later)
    row_ok = rows < N
    cols = tl.arange(0, BLOCK_K)
    w_rows = w_ptr + rows[:, None].to(tl.int64) * stride_wn
    u_rows = w_rows + N * stride_wn.to(tl.int64)  # GLU only
    # The first weight tile is loaded before anything an earlier kernel writes: with programmatic dependent
    # launch (PDL) the program starts while the kernel before it drains, and streams weights meanwhile.
    c_ok = cols < K
    w = tl.load(w_rows + cols[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0.0)
    if GLU:
        wu = tl.load(u_rows + cols[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0.0)
    if PDL:  # from here on: the earlier kernels' writes are visible; let the next kernel launch early
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    x, ss = x_chunk(x_ptr, g_ptr, cols, c_ok, K, NORM, SWIGLU)
    acc = w.to(tl.float32) * x[None, :]
    if GLU:
        acc_u = wu.to(tl.float32) * x[None, :]
    for k0 in range(BLOCK_K, K, BLOCK_K):
        c = k0 + cols
        c_ok = c < K
        xc, sq = x_chunk(x_ptr, g_ptr, c, c_ok, K, NORM, SWIGLU)
        ss += sq
        w = tl.load(w_rows + c[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0.0)
        acc += w.to(tl.float32) * xc[None, :]
        if GLU:
            wu = tl.load(u_rows + c[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0.0)
            acc_u += wu.to(tl.float32) * xc[None, :]
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
