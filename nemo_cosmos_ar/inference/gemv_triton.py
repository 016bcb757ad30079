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
def dot4(w32, x32, acc, ASM: tl.constexpr):
    """``acc + sum_j byte_j(w32) * byte_j(x32)`` over the 4 signed int8 bytes of two int32 words: one ``dp4a``
    instruction on the GPU (``ASM``), shifts in Triton's interpreter."""
    if ASM:
        return tl.inline_asm_elementwise(
            "dp4a.s32.s32 $0, $1, $2, $3;", "=r,r,r,r", [w32, x32, acc], dtype=tl.int32, is_pure=True, pack=1
        )
    for j in tl.static_range(4):
        acc += ((w32 << (24 - 8 * j)) >> 24) * ((x32 << (24 - 8 * j)) >> 24)
    return acc


@triton.jit
def pack4(v):
    """``[T, 4]`` int32 values in [-128, 127] as ``[T]`` int32 words, value j in byte j (little-endian)."""
    sh = 8 * tl.arange(0, 4)
    return tl.sum((v & 0xFF) << sh[None, :], 1)


@triton.jit
def gemv_dp4a_kernel(
    x_ptr, w_ptr, y_ptr, s_ptr, N, K, stride_wn,
    PDL: tl.constexpr, LEVELS: tl.constexpr, ASM: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """``y = (W x) * s`` for int8 ``W [N, K]`` (rows read as int32 words of 4 columns, ``K % 4 == 0``) with integer
    dot products: x is written as ``sum_l q_l * amax / 127 / 254^l`` with int8 ``q_l`` (``LEVELS`` of them; each
    level carries the remainder of the one before, at most half its step), packed 4 to a word, and each weight word
    meets each x word in one ``dp4a`` (4 multiply-adds): ``LEVELS / 4`` instructions per weight, exact int32 sums,
    no int-to-float work per weight. x is carried to ``amax / (2 * 127 * 254^(LEVELS - 1))`` per value."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    TILE: tl.constexpr = BLOCK_K // 4
    K_T = K // 4
    cols = tl.arange(0, TILE)
    w_rows = w_ptr + rows[:, None].to(tl.int64) * stride_wn
    w = tl.load(w_rows + cols[None, :], mask=row_ok[:, None] & (cols < K_T)[None, :], other=0)
    if PDL:  # as gemv_kernel: the first weight tile is read before waiting for the kernel before
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    # x's largest magnitude (every program computes the same one; x is a few KB, read from L2)
    amax = tl.max(tl.abs(tl.load(x_ptr + tl.arange(0, BLOCK_K), mask=tl.arange(0, BLOCK_K) < K, other=0.0)), 0)
    for k0 in range(BLOCK_K, K, BLOCK_K):
        c = k0 + tl.arange(0, BLOCK_K)
        amax = tl.maximum(amax, tl.max(tl.abs(tl.load(x_ptr + c, mask=c < K, other=0.0)), 0))
    amax = amax.to(tl.float32)
    inv = tl.where(amax > 0, 127.0 / amax, 0.0)
    step = amax / 127.0
    j4 = tl.arange(0, 4)
    acc0 = tl.zeros([BLOCK_N, TILE], dtype=tl.int32)
    acc1 = tl.zeros([BLOCK_N, TILE], dtype=tl.int32)
    acc2 = tl.zeros([BLOCK_N, TILE], dtype=tl.int32)
    for k0 in range(0, K_T, TILE):
        c = k0 + cols
        c_ok = c < K_T
        if k0 > 0:
            w = tl.load(w_rows + c[None, :], mask=row_ok[:, None] & c_ok[None, :], other=0)
        xv = tl.load(x_ptr + 4 * c[:, None] + j4[None, :], mask=c_ok[:, None], other=0.0).to(tl.float32)
        q0 = tl.floor(xv * inv + 0.5)
        acc0 = dot4(w, tl.broadcast_to(pack4(q0.to(tl.int32))[None, :], [BLOCK_N, TILE]), acc0, ASM)
        r = xv - q0 * step
        q1 = tl.minimum(tl.maximum(tl.floor(r * (254.0 * inv) + 0.5), -127.0), 127.0)
        acc1 = dot4(w, tl.broadcast_to(pack4(q1.to(tl.int32))[None, :], [BLOCK_N, TILE]), acc1, ASM)
        if LEVELS == 3:
            r = r - q1 * (step / 254.0)
            q2 = tl.minimum(tl.maximum(tl.floor(r * (64516.0 * inv) + 0.5), -127.0), 127.0)
            acc2 = dot4(w, tl.broadcast_to(pack4(q2.to(tl.int32))[None, :], [BLOCK_N, TILE]), acc2, ASM)
    y = tl.sum(acc0, 1).to(tl.float32) * step + tl.sum(acc1, 1).to(tl.float32) * (step / 254.0)
    if LEVELS == 3:
        y += tl.sum(acc2, 1).to(tl.float32) * (step / 64516.0)
    y = y * tl.load(s_ptr + rows, mask=row_ok, other=0.0)
    tl.store(y_ptr + rows, y.to(y_ptr.dtype.element_ty), mask=row_ok)
