"""Flash-decoding (split-K) attention for one query position per sequence, with GQA, as two Triton kernels.

A decode step's attention reads the whole filled cache for one query row per head: at batch 1 there is too little
work per (sequence, KV group) for one thread block, so the cache is cut into ``S`` chunks and each (sequence, group,
chunk) is a program of its own (flash-decoding):

1. ``_split_kernel``, grid ``(B * groups, S)``: the group's ``heads / groups`` query heads are the rows of one
   ``tl.dot`` against each K tile (padded to 16 rows, the smallest dot), so the cache is read once for all the heads
   of a group. It walks its chunk clipped to ``[0, pos]`` (``pos`` is read on the device, so slots past it are never
   loaded and the step stays capturable in a CUDA graph) with an fp32 online softmax, and writes the unnormalised
   partial output, the running max (base 2) and the running sum per head to a workspace. A chunk that starts past
   ``pos`` writes max ``-inf``, sum 0 and a zero output: weight 0 in the combine, no NaN.
2. ``_combine_kernel``, grid ``(B * heads,)``: rescales the partials to the common max, sums, divides, and writes
   ``[1, B, heads * hd]`` in the query's dtype.

Triton is imported only when a kernel is first needed, so this module imports without it. On CPU tensors the kernels
run in Triton's interpreter (tests); ``decode_attention_reference`` is the fp32 yardstick.
"""

from __future__ import annotations

import functools
import math
import os

import torch

BLOCK_N = 64  # cache slots per tile; chunks are whole tiles
# The launch choices ``decode_attention`` uses unless told otherwise: tile, split target (programs per SM), warps and
# pipelining depth; bench/bench_decode_attention.py --sweep times the alternatives.
# On the H200, 4 waves (about 4 programs per SM) gave 11.6 / 15.1 / 19.3 us per layer at 6,144 / 9,216 / 12,800 filled
# slots against 12.9 / 17.5 / 22.1 with 2: the least summed time of a 72-choice sweep (BENCHMARKS.md, issue 12).
DEFAULTS = {"block_n": BLOCK_N, "waves": 4.0, "num_warps": 4, "num_stages": 2}
_KERNELS: list[tuple] = []  # (split kernel, combine kernel) once built


def _build() -> tuple:
    """The two kernels, decorated on first use. Whether they run in Triton's interpreter is decided at ``@triton.jit``
    time (and read again by Triton's own lazy imports), from ``TRITON_INTERPRET=1`` in the environment."""
    if _KERNELS:
        return _KERNELS[0]
    import triton
    import triton.language as tl

    @triton.jit
    def split_kernel(
        q_ptr, k_ptr, v_ptr, pos_ptr, acc_ptr, m_ptr, l_ptr, kn_ptr, vn_ptr,
        stride_qb, stride_qh, stride_kb, stride_kg, stride_kn, stride_vb, stride_vg, stride_vn,
        stride_knb, stride_kng, stride_vnb, stride_vng,
        length, chunk, num_splits, qk_scale,
        GROUPS: tl.constexpr, HPG: tl.constexpr, HEAD_DIM: tl.constexpr,
        BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, F32_DOT: tl.constexpr,
        WRITE: tl.constexpr, PDL: tl.constexpr,
    ):  # fmt: skip
        if PDL:  # launched early (programmatic dependent launch): wait for the kernels before, then let the next go
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        bg = tl.program_id(0)
        split = tl.program_id(1)
        b = (bg // GROUPS).to(tl.int64)
        g = bg % GROUPS
        rows = tl.arange(0, BLOCK_H)  # query heads of this group (padded)
        dims = tl.arange(0, BLOCK_D)
        row_ok = rows < HPG
        dim_ok = dims < HEAD_DIM
        heads = g * HPG + rows
        q = tl.load(
            q_ptr + b * stride_qb + heads[:, None] * stride_qh + dims[None, :],
            mask=row_ok[:, None] & dim_ok[None, :],
            other=0.0,
        )
        pos = tl.load(pos_ptr).to(tl.int32)
        start = split * chunk
        end = tl.minimum(tl.minimum(start + chunk, pos + 1), length)  # slots > pos are never read
        k_base = k_ptr + b * stride_kb + g.to(tl.int64) * stride_kg
        v_base = v_ptr + b * stride_vb + g.to(tl.int64) * stride_vg
        if WRITE:  # this step's K/V: the chunk holding pos stores them and attends to them from registers, last
            k_new = tl.load(kn_ptr + b * stride_knb + g.to(tl.int64) * stride_kng + dims, mask=dim_ok, other=0.0)
            v_new = tl.load(vn_ptr + b * stride_vnb + g.to(tl.int64) * stride_vng + dims, mask=dim_ok, other=0.0)
            if (pos >= start) & (pos < start + chunk):
                tl.store(k_base + pos.to(tl.int64) * stride_kn + dims, k_new, mask=dim_ok)
                tl.store(v_base + pos.to(tl.int64) * stride_vn + dims, v_new, mask=dim_ok)
        m_i = tl.full([BLOCK_H], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_H], tl.float32)
        acc = tl.zeros([BLOCK_H, BLOCK_D], tl.float32)
        # With WRITE the tiles stop before slot pos (it is added after the loop), so the loop is the plain one.
        stop = tl.minimum(end, pos) if WRITE else end
        for n0 in range(start, stop, BLOCK_N):
            slots = n0 + tl.arange(0, BLOCK_N)
            ok = slots < stop
            kt = tl.load(  # K^T tile [BLOCK_D, BLOCK_N]
                k_base + slots[None, :].to(tl.int64) * stride_kn + dims[:, None],
                mask=ok[None, :] & dim_ok[:, None],
                other=0.0,
            )
            if F32_DOT:
                s = tl.dot(q.to(tl.float32), kt.to(tl.float32), input_precision="ieee")
            else:
                s = tl.dot(q, kt)
            s = tl.where(ok[None, :], s * qk_scale, float("-inf"))  # base-2 logits
            m_new = tl.maximum(m_i, tl.max(s, 1))  # finite: the tile holds slot n0 < stop
            alpha = tl.exp2(m_i - m_new)
            p = tl.exp2(s - m_new[:, None])
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
        if WRITE:
            if (pos >= start) & (pos < start + chunk):  # slot pos: one more online-softmax step, in fp32
                s_new = tl.sum(q.to(tl.float32) * k_new.to(tl.float32)[None, :], 1) * qk_scale
                m_new = tl.maximum(m_i, s_new)
                alpha = tl.exp2(m_i - m_new)
                p_new = tl.exp2(s_new - m_new)
                l_i = l_i * alpha + p_new
                acc = acc * alpha[:, None] + p_new[:, None] * v_new.to(tl.float32)[None, :]
                m_i = m_new
        # workspace [B, heads, S, ...]: head h of sequence b at row (b * GROUPS * HPG + h)
        ws_rows = (b * (GROUPS * HPG) + heads) * num_splits + split
        tl.store(acc_ptr + ws_rows[:, None] * BLOCK_D + dims[None, :], acc, mask=row_ok[:, None])
        tl.store(m_ptr + ws_rows, m_i, mask=row_ok)
        tl.store(l_ptr + ws_rows, l_i, mask=row_ok)

    @triton.jit
    def combine_kernel(
        acc_ptr, m_ptr, l_ptr, out_ptr, num_splits,
        HEAD_DIM: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr, PDL: tl.constexpr,
    ):  # fmt: skip
        if PDL:
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        bh = tl.program_id(0).to(tl.int64)  # = b * heads + h, also the output row's offset in head_dim units
        splits = tl.arange(0, BLOCK_S)
        dims = tl.arange(0, BLOCK_D)
        s_ok = splits < num_splits
        m = tl.load(m_ptr + bh * num_splits + splits, mask=s_ok, other=float("-inf"))
        l_s = tl.load(l_ptr + bh * num_splits + splits, mask=s_ok, other=0.0)
        acc = tl.load(
            acc_ptr + (bh * num_splits + splits)[:, None] * BLOCK_D + dims[None, :], mask=s_ok[:, None], other=0.0
        )
        w = tl.exp2(m - tl.max(m, 0))  # split 0 always holds slot 0, so the max is finite; empty splits weigh 0
        out = tl.sum(acc * w[:, None], 0) / tl.sum(l_s * w, 0)
        tl.store(out_ptr + bh * HEAD_DIM + dims, out.to(out_ptr.dtype.element_ty), mask=dims < HEAD_DIM)

    _KERNELS.append((split_kernel, combine_kernel))
    return _KERNELS[0]


def available() -> bool:
    """Whether Triton can be imported (it ships with CUDA builds of torch; CPU builds lack it)."""
    import importlib.util

    return importlib.util.find_spec("triton") is not None


@functools.cache
def _sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4  # CPU (interpreter): few programs, they run one after the other


def num_splits(batch: int, groups: int, length: int, sms: int, block_n: int = BLOCK_N, waves: float = 2.0):
    """``(S, chunk)``: the cache of ``length`` slots cut into ``S`` chunks of ``chunk`` slots (a multiple of
    ``block_n``) so that the ``batch * groups * S`` programs of the split kernel are about ``waves`` times the SM
    count (several resident programs per SM hide the load latency). A pure function of the shape: one per graph."""
    tiles = -(-length // block_n)
    per_split = max(1, math.ceil(tiles * batch * groups / (waves * sms)))
    return -(-tiles // per_split), per_split * block_n


def decode_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pos: torch.Tensor,
    scale: float | None = None,
    *,
    splits: int | None = None,
    block_n: int | None = None,
    waves: float | None = None,
    num_warps: int | None = None,
    num_stages: int | None = None,
    k_new: torch.Tensor | None = None,
    v_new: torch.Tensor | None = None,
    pdl: bool = False,
) -> torch.Tensor:
    """Attention of one query position per sequence to cache slots ``0..pos``.

    q ``[1, B, heads, hd]``; k, v ``[B, groups, L, hd]`` (any strides but the last, which must be 1: a slice of the
    static cache); ``pos`` a one-element integer tensor on q's device with ``pos < L``; query head ``j`` reads KV
    group ``j // (heads / groups)``. Returns ``[1, B, heads * hd]`` in q's dtype. ``splits`` forces the number of
    chunks (tests); otherwise ``num_splits`` picks it from the shape and the device's SM count.

    ``k_new``/``v_new`` ``[B, groups, hd]`` (optional, together): this step's K and V, written into slot ``pos`` of
    k/v by the kernel itself (saving the step's two ``index_copy_`` launches per layer) and used for that slot.

    ``block_n``, ``waves``, ``num_warps``, ``num_stages``: launch choices (None: ``DEFAULTS``).

    ``pdl`` (CUDA, Hopper and later): both kernels are launched with programmatic dependent launch, so each may start
    while the kernel before it drains; each waits for that kernel's writes before reading anything.
    """
    block_n = DEFAULTS["block_n"] if block_n is None else block_n
    waves = DEFAULTS["waves"] if waves is None else waves
    num_warps = DEFAULTS["num_warps"] if num_warps is None else num_warps
    num_stages = DEFAULTS["num_stages"] if num_stages is None else num_stages
    _, b, heads, hd = q.shape
    kb, groups, length, khd = k.shape
    if kb != b or khd != hd or tuple(v.shape) != tuple(k.shape) or heads % groups:
        raise ValueError(f"decode_attention: q {tuple(q.shape)} does not fit k {tuple(k.shape)} / v {tuple(v.shape)}")
    if q.stride(-1) != 1:
        q = q.contiguous()
    if k.stride(-1) != 1 or v.stride(-1) != 1:
        raise ValueError("decode_attention: the cache's last dimension (head_dim) must be contiguous")
    write = k_new is not None
    if write != (v_new is not None):
        raise ValueError("decode_attention: pass k_new and v_new together")
    if write and (tuple(k_new.shape) != (b, groups, hd) or tuple(v_new.shape) != (b, groups, hd)):
        raise ValueError(f"decode_attention: k_new/v_new must be {(b, groups, hd)}, got {tuple(k_new.shape)}")
    if write and (k_new.stride(-1) != 1 or v_new.stride(-1) != 1):
        k_new, v_new = k_new.contiguous(), v_new.contiguous()
    kn, vn = (k_new, v_new) if write else (k, v)  # unused pointers when not writing
    if pos.device != q.device:
        raise ValueError(f"decode_attention: pos is on {pos.device}, q on {q.device} (pos must stay on the device)")
    hpg = heads // groups
    block_d = max(16, _next_pow2(hd))
    if splits is None:
        splits, chunk = num_splits(b, groups, length, _sm_count(q.device), block_n, waves)
    else:
        per_split = -(-length // splits)
        chunk = -(-per_split // block_n) * block_n  # ceil(L / S) rounded up to whole tiles
    scale = hd**-0.5 if scale is None else scale
    if q.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("decode_attention: CPU tensors run in Triton's interpreter: set TRITON_INTERPRET=1 first")
    split_kernel, combine_kernel = _build()
    # fp32 inputs: exact fp32 dots (no TF32), as the reference. The interpreter (CPU) computes every dot in fp32 too:
    # its bf16 dot reads the raw bits as numbers (Triton 3.5.1), and the fp32 dot skips rounding p to bf16.
    f32_dot = q.dtype == torch.float32 or q.device.type != "cuda"
    acc = torch.empty((b, heads, splits, block_d), dtype=torch.float32, device=q.device)
    m = torch.empty((b, heads, splits), dtype=torch.float32, device=q.device)
    l_s = torch.empty_like(m)
    pdl = pdl and q.device.type == "cuda"  # the interpreter has no launch attributes
    launch = {"launch_pdl": True} if pdl else {}
    split_kernel[(b * groups, splits)](
        q, k, v, pos, acc, m, l_s, kn, vn,
        q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2),
        kn.stride(0), kn.stride(1), vn.stride(0), vn.stride(1),
        length, chunk, splits, scale * math.log2(math.e),
        GROUPS=groups, HPG=hpg, HEAD_DIM=hd, BLOCK_H=max(16, _next_pow2(hpg)), BLOCK_N=block_n,
        BLOCK_D=block_d, F32_DOT=f32_dot, WRITE=write, PDL=pdl, num_warps=num_warps, num_stages=num_stages, **launch,
    )  # fmt: skip
    out = torch.empty((1, b, heads * hd), dtype=q.dtype, device=q.device)
    combine_kernel[(b * heads,)](
        acc, m, l_s, out, splits, HEAD_DIM=hd, BLOCK_S=max(2, _next_pow2(splits)), BLOCK_D=block_d, PDL=pdl,
        num_warps=4, **launch,
    )  # fmt: skip
    return out


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def decode_attention_reference(q, k, v, pos, scale: float | None = None) -> torch.Tensor:
    """The same attention in fp32 torch ops over exactly slots ``0..pos`` (reads ``pos`` on the host: tests only).
    Returns ``[1, B, heads * hd]`` in fp32."""
    _, b, heads, hd = q.shape
    groups = k.shape[1]
    n = int(pos.reshape(-1)[0]) + 1
    scale = hd**-0.5 if scale is None else scale
    qg = q[0].float().reshape(b, groups, heads // groups, hd)
    scores = torch.matmul(qg, k[:, :, :n].float().transpose(-1, -2)) * scale
    return torch.matmul(scores.softmax(-1), v[:, :, :n].float()).reshape(1, b, heads * hd)
