"""Split-K attention for the M query positions of a speculative verify forward, with GQA, as two Triton kernels.

A verify forward (``engine.verify``, ``speculative.py``) runs M = L + 1 consecutive positions pos .. pos + M - 1 of one
sequence against the KV cache, row j seeing slots 0 .. pos + j. As two GEMMs per KV group with an fp32 softmax over
the whole attended bucket, the scores of every row against every attended slot go to memory and back three times;
this kernel took the forward at M = 17 from 3.58 to 2.91 ms on the H200 (BENCHMARKS.md, issue 13). It is the decode
kernel's flash-decoding (``decode_kernel``) with more rows:

1. ``split_kernel``, grid ``(groups * row blocks, S)``: the rows of one KV group are its ``hpg`` query heads at each
   of the M positions, row r being position ``r // hpg`` and head ``g * hpg + r % hpg``; a block of ``BLOCK_H`` rows
   is one ``tl.dot`` against each K tile, so the cache is read once per row block (one block holds them all up to
   M * hpg = ``BLOCK_H``). Each program walks its chunk of the cache clipped to the block's last visible slot
   (``pos`` read on the device: the forward stays capturable in a CUDA graph) with an fp32 online softmax, masking
   per row (slot <= pos + j), and writes the unnormalised partial output, running max and sum per row.
   Unlike a decode, a tile can hold no visible slot for some rows of the block (the window's early positions in the
   chunk of the last slots): such rows keep max -inf and sum 0 without producing NaN.
2. The decode kernel's combine, grid ``(M * heads,)``: the workspace rows are laid out as the output's, position-major.
   A second launch on purpose: combining in the split kernel, by the last of a row block's programs to arrive, was
   1.1-2.7x slower on the H200 (BENCHMARKS.md, issue 13, call a43): one program then reads every split's partials
   for its 64 rows alone, at the kernel's tail, where the combine kernel spreads them over M * heads programs.
   Launching both kernels by programmatic dependent launch (as the decode kernel's) did not pay either: +3.6 to
   +4.7 us a call at M = 16 / 32, -0.7 us at M = 64, steps +0.07 to +0.10 ms at L = 15 / 31 (call a51).

The K/V of the M positions are written into the cache before the call (``fused_step.write_window``, inside the fused
step's QK-norm/RoPE kernel when it runs), so the kernel only reads.
On CPU tensors the kernels run in Triton's interpreter (tests, ``TRITON_INTERPRET=1``);
``verify_attention_reference`` is the fp32 yardstick.
"""

from __future__ import annotations

import os

import torch

from nemo_cosmos_ar.inference import decode_kernel

# Launch choices. BLOCK_H = 0: the whole M * hpg rows in one block (rounded up to a power of two), capped at
# MAX_BLOCK_H. Swept on the H200 (BENCHMARKS.md, issue 13, calls a26 and a27): blocks of 64 rows, 4 warps, ~2
# programs per SM, 64-slot K tiles and a 3-deep pipeline were the best of the 144 choices tried at every M = 17 / 33 /
# 65 and cache fill measured: 31-44% under the first guess (all rows, 8 warps, 4 waves, 2 stages), e.g. M = 17 at
# 5,120 filled slots 26.5 -> 16.4 us a layer, M = 65 at 12,700 101 -> 56.5 us.
DEFAULTS = {"block_h": 64, "block_n": 64, "waves": 2.0, "num_warps": 4, "num_stages": 3}
MAX_BLOCK_H = 128
_KERNELS: list = []


def _build():
    if _KERNELS:
        return _KERNELS[0]
    import triton
    import triton.language as tl

    @triton.jit
    def split_kernel(
        q_ptr, k_ptr, v_ptr, pos_ptr, acc_ptr, m_ptr, l_ptr,
        stride_qm, stride_qh, stride_kg, stride_kn, stride_vg, stride_vn,
        length, chunk, num_splits, rows_total, row_blocks, qk_scale,
        HEADS: tl.constexpr, HPG: tl.constexpr, HEAD_DIM: tl.constexpr,
        BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, F32_DOT: tl.constexpr,
    ):  # fmt: skip
        pid = tl.program_id(0)
        split = tl.program_id(1)
        g = pid // row_blocks
        rows = (pid % row_blocks) * BLOCK_H + tl.arange(0, BLOCK_H)
        dims = tl.arange(0, BLOCK_D)
        row_ok = rows < rows_total
        dim_ok = dims < HEAD_DIM
        j = rows // HPG  # position offset of the row in the window
        heads = g * HPG + rows % HPG
        q = tl.load(
            q_ptr + j[:, None].to(tl.int64) * stride_qm + heads[:, None] * stride_qh + dims[None, :],
            mask=row_ok[:, None] & dim_ok[None, :],
            other=0.0,
        )
        pos = tl.load(pos_ptr).to(tl.int32)
        limit = tl.where(row_ok, pos + j, -1)  # the last slot each row sees; padding rows see none
        start = split * chunk
        end = tl.minimum(tl.minimum(start + chunk, tl.max(limit, 0) + 1), length)
        k_base = k_ptr + g.to(tl.int64) * stride_kg
        v_base = v_ptr + g.to(tl.int64) * stride_vg
        m_i = tl.full([BLOCK_H], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_H], tl.float32)
        acc = tl.zeros([BLOCK_H, BLOCK_D], tl.float32)
        for n0 in range(start, end, BLOCK_N):
            slots = n0 + tl.arange(0, BLOCK_N)
            ok = slots < end
            kt = tl.load(  # K^T tile [BLOCK_D, BLOCK_N]
                k_base + slots[None, :].to(tl.int64) * stride_kn + dims[:, None],
                mask=ok[None, :] & dim_ok[:, None],
                other=0.0,
            )
            if F32_DOT:
                s = tl.dot(q.to(tl.float32), kt.to(tl.float32), input_precision="ieee")
            else:
                s = tl.dot(q, kt)
            seen = ok[None, :] & (slots[None, :] <= limit[:, None])
            s = tl.where(seen, s * qk_scale, float("-inf"))  # base-2 logits
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row that has seen nothing yet: no -inf - -inf
            alpha = tl.exp2(m_i - m_use)
            p = tl.exp2(s - m_use[:, None])
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(
                v_base + slots[:, None].to(tl.int64) * stride_vn + dims[None, :],
                mask=ok[:, None] & dim_ok[None, :],
                other=0.0,
            )
            if F32_DOT:
                acc = acc * alpha[:, None] + tl.dot(p, v.to(tl.float32), input_precision="ieee")
            else:
                acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
            m_i = m_new
        # workspace [M * heads, S, ...] in the output's order: position j, head h at row j * HEADS + h
        ws_rows = (j.to(tl.int64) * HEADS + heads) * num_splits + split
        tl.store(acc_ptr + ws_rows[:, None] * BLOCK_D + dims[None, :], acc, mask=row_ok[:, None])
        tl.store(m_ptr + ws_rows, m_i, mask=row_ok)
        tl.store(l_ptr + ws_rows, l_i, mask=row_ok)

    _KERNELS.append(split_kernel)
    return split_kernel


def block_rows(rows: int, block_h: int = 0) -> int:
    """The rows per program: ``block_h`` if given, else all ``rows`` rounded up to a power of two (>= 16, the
    smallest dot), capped at ``MAX_BLOCK_H``."""
    if block_h:
        return block_h
    return min(MAX_BLOCK_H, max(16, decode_kernel._next_pow2(rows)))


def verify_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pos: torch.Tensor,
    scale: float | None = None,
    *,
    splits: int | None = None,
    block_h: int | None = None,
    block_n: int | None = None,
    waves: float | None = None,
    num_warps: int | None = None,
    num_stages: int | None = None,
) -> torch.Tensor:
    """Attention of positions ``pos .. pos + M - 1`` of one sequence to cache slots ``0 .. pos + j`` (row j).

    q ``[M, heads, hd]``; k, v ``[groups, L, hd]`` (a batch-1 cache sliced to the attended slots; last dimension
    contiguous) holding the M positions' K/V already; ``pos`` a one-element integer tensor on q's device with
    ``pos + M <= L``. Query head h reads KV group ``h // (heads / groups)``. Returns ``[M, heads * hd]`` in q's dtype.
    ``splits`` forces the number of cache chunks (tests); the other keywords are launch choices (None: ``DEFAULTS``).
    """
    given = {"block_h": block_h, "block_n": block_n, "waves": waves, "num_warps": num_warps, "num_stages": num_stages}
    opts = {**DEFAULTS, **{key: val for key, val in given.items() if val is not None}}
    m, heads, hd = q.shape
    groups, length, khd = k.shape
    if khd != hd or tuple(v.shape) != tuple(k.shape) or heads % groups:
        raise ValueError(f"verify_attention: q {tuple(q.shape)} does not fit k {tuple(k.shape)} / v {tuple(v.shape)}")
    if k.stride(-1) != 1 or v.stride(-1) != 1:
        raise ValueError("verify_attention: the cache's last dimension (head_dim) must be contiguous")
    if pos.device != q.device:
        raise ValueError(f"verify_attention: pos is on {pos.device}, q on {q.device} (pos must stay on the device)")
    if q.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("verify_attention: CPU tensors run in Triton's interpreter: set TRITON_INTERPRET=1 first")
    if q.stride(-1) != 1:
        q = q.contiguous()
    hpg = heads // groups
    rows_total = m * hpg
    bh = block_rows(rows_total, opts["block_h"])
    row_blocks = -(-rows_total // bh)
    block_n = opts["block_n"]
    block_d = max(16, decode_kernel._next_pow2(hd))
    if splits is None:  # as the decode kernel: about ``waves`` programs per SM (row blocks count as sequences)
        splits, chunk = decode_kernel.num_splits(
            row_blocks, groups, length, decode_kernel._sm_count(q.device), block_n, opts["waves"]
        )
    else:
        per_split = -(-length // splits)
        chunk = -(-per_split // block_n) * block_n  # whole tiles
    scale = hd**-0.5 if scale is None else scale
    f32_dot = q.dtype == torch.float32 or q.device.type != "cuda"  # see decode_kernel: the interpreter's bf16 dot
    split_kernel = _build()
    combine_kernel = decode_kernel._build()[1]
    acc = torch.empty((m * heads, splits, block_d), dtype=torch.float32, device=q.device)
    mx = torch.empty((m * heads, splits), dtype=torch.float32, device=q.device)
    sums = torch.empty_like(mx)
    split_kernel[(groups * row_blocks, splits)](
        q, k, v, pos, acc, mx, sums,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
        length, chunk, splits, rows_total, row_blocks, scale * 1.4426950408889634,
        HEADS=heads, HPG=hpg, HEAD_DIM=hd, BLOCK_H=bh, BLOCK_N=block_n, BLOCK_D=block_d, F32_DOT=f32_dot,
        num_warps=opts["num_warps"], num_stages=opts["num_stages"],
    )  # fmt: skip
    out = torch.empty((m, heads * hd), dtype=q.dtype, device=q.device)
    combine_kernel[(m * heads,)](
        acc, mx, sums, out, splits, HEAD_DIM=hd, BLOCK_S=max(2, decode_kernel._next_pow2(splits)), BLOCK_D=block_d,
        PDL=False, num_warps=4,
    )  # fmt: skip
    return out


def verify_attention_reference(q, k, v, pos, scale: float | None = None) -> torch.Tensor:
    """The same attention in fp32 torch ops (reads ``pos`` on the host: tests only). Returns ``[M, heads * hd]``."""
    m, heads, hd = q.shape
    groups, length, _ = k.shape
    p0 = int(pos.reshape(-1)[0])
    scale = hd**-0.5 if scale is None else scale
    qg = q.float().reshape(m, groups, heads // groups, hd).transpose(0, 1)  # [groups, M, hpg, hd]
    scores = torch.einsum("gmhd,gnd->gmhn", qg, k.float()) * scale
    visible = torch.arange(length)[None, :] <= (p0 + torch.arange(m))[:, None]  # [M, L]
    scores = scores.masked_fill(~visible.to(scores.device)[None, :, None, :], float("-inf"))
    out = torch.einsum("gmhn,gnd->gmhd", scores.softmax(-1), v.float())
    return out.transpose(0, 1).reshape(m, heads * hd)
