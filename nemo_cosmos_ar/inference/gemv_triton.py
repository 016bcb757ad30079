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


@triton.jit
def nibble(w32, j: tl.constexpr):
    """Nibble ``j`` (0..4) of each int32 word times ``16**j``, as fp32, exactly: masked in place and ORed into the
    bits of 2^23 it makes the float ``2^23 + nibble * 16**j`` (below 2^24 for j <= 4, so every bit is kept), and
    subtracting 2^23 leaves it. One AND/OR (a single LOP3) and one add per weight instead of a shift, a mask and an
    int-to-float conversion; the ``16**-j`` goes into the input value, which is shared by all rows."""
    return ((w32 & (0xF << (4 * j))) | 0x4B000000).to(tl.float32, bitcast=True) - 8388608.0


@triton.jit
def inv16(j: tl.constexpr):
    """``16**-j`` as fp32, built from its exponent bits (exact)."""
    return tl.full([1], (127 - 4 * j) << 23, tl.int32).to(tl.float32, bitcast=True)


@triton.jit
def int4_tile(acc, w, x_ptr, s_rows, c, c_ok, GROUP_W: tl.constexpr):
    """``acc += scale * (q x)`` for one tile of int32 words ``w [BLOCK_N, TILE]`` (8 columns each: column
    ``8 c + j`` in bits ``4 j..``, stored as ``q + 8``). Per word: ``p = sum_j nibble_j x_j`` and
    ``q x = p - 8 sum_j x_j`` (the offset's sum is the same for every row, so it is taken once per tile), then one
    multiply by the word's group scale."""
    hi = w >> 20  # nibbles 5..7 moved to 0..2 (the arithmetic shift's sign bits are masked off)
    p = tl.zeros(w.shape, dtype=tl.float32)
    xs = tl.zeros(c.shape, dtype=tl.float32)
    for j in tl.static_range(8):
        x = tl.load(x_ptr + 8 * c + j, mask=c_ok, other=0.0).to(tl.float32)
        xs += x
        if j < 5:
            p += nibble(w, j) * (x * inv16(j))[None, :]
        else:
            p += nibble(hi, j - 5) * (x * inv16(j - 5))[None, :]
    s = tl.load(s_rows + (c // GROUP_W)[None, :], mask=c_ok[None, :], other=0.0)
    return acc + s * (p - 8.0 * xs[None, :])


@triton.jit
def gemv_int4_kernel(
    x_ptr, w_ptr, y_ptr, r_ptr, s_ptr, N, KW, stride_wn, stride_sn,
    RESIDUAL: tl.constexpr, PDL: tl.constexpr, GROUP_W: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    """``y = W x`` (``+ r``) for int4 weights as int32 words ``[N, KW]`` with fp32 scales ``[N, KW / GROUP_W]``
    (one per ``GROUP_W`` words); each program owns ``BLOCK_N`` rows and walks them ``BLOCK_W`` words at a time."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    rows = tl.where(row_ok, rows, 0)  # out-of-range rows read row 0 (in bounds) and are not stored
    cols = tl.arange(0, BLOCK_W)
    w_rows = w_ptr + rows[:, None].to(tl.int64) * stride_wn
    s_rows = s_ptr + rows[:, None].to(tl.int64) * stride_sn
    c_ok = cols < KW
    w = tl.load(w_rows + cols[None, :], mask=c_ok[None, :], other=0)  # before the wait, as gemv_kernel
    if PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    acc = int4_tile(tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32), w, x_ptr, s_rows, cols, c_ok, GROUP_W)
    for k0 in range(BLOCK_W, KW, BLOCK_W):
        c = k0 + cols
        c_ok = c < KW
        w = tl.load(w_rows + c[None, :], mask=c_ok[None, :], other=0)
        acc = int4_tile(acc, w, x_ptr, s_rows, c, c_ok, GROUP_W)
    y = tl.sum(acc, 1)
    if RESIDUAL:  # r + W x with W x rounded first, as gemv_kernel
        y = y.to(y_ptr.dtype.element_ty).to(tl.float32) + tl.load(r_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)
    tl.store(y_ptr + rows, y.to(y_ptr.dtype.element_ty), mask=row_ok)
