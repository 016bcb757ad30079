"""The speculative step's accept/reject (``speculative._Window.advance``) as Triton kernels, without a sort.

Why: in torch ops the step's sampling distributions (softmax, a segmented sort of the 17 x 64,000 values for top-p,
the cumsum, the masks, the scatter back to vocabulary order) and the coupled resampling take 0.36 ms of a 3.5 ms
verify step at L = 16 on the H200 (BENCHMARKS.md, issue 13). A first version here, one program per row bisecting
over the row 17 times, took 0.43 ms: 17 programs leave most of the GPU idle and each pass waits on its loads. So
each row is cut into ``SPLITS`` chunks, one program each, and the passes are separate launches of R x SPLITS
programs that combine the chunks' partial sums at their start.

What it computes, per row r of the verify forward's logits ``[R, V]`` (R = L + 1), with temperature T and top-p:

* **The nucleus without sorting.** With e_i = exp((x_i - max) / T), cosmos-predict1's top-p keeps, in descending
  order, every entry whose mass *before* it is at most ``top_p``: a prefix of the sorted row. With G(t) the mass of
  the entries whose key is above t (keys: the logits' bits mapped to integers in the floats' order), an entry of a
  value v is kept when the mass above v is at most top_p (and, within a group of equal values, in vocabulary order
  while the running mass stays there, as a stable sort would order them). G falls as t rises, so the least t with
  G(t) <= top_p is found by a search over the key range that tests ``WAYS`` thresholds a pass (3 passes for bf16
  logits, 6 for fp32); the least value at or above it is the boundary, and the boundary group keeps its first
  ``floor((top_p - G) / e*) + 1`` members.
* **p**, the kept e_i divided by their sum, written in vocabulary order (``P [R, V]``): the next step's proposals.
* **The accept test and the draws** (``speculative.coupled_resample``): for a draft row, keep the draft d with
  probability min(1, p(d)/q(d)) (``u * q(d) < p(d)``), else the race ``argmax(max(p - q, 0) / E)`` (or over p where
  the residual is empty); for the last row, the race ``argmax(p / E)``. First index on ties, as ``torch.argmax``.

Launches (grid R x SPLITS unless said): ``stats`` (each chunk's max, sum of exp and key range), ``search`` per pass
(the interval from the previous pass's partial masses, then this pass's), ``boundary`` (the least key in the final
interval), ``group`` (the mass above it, the tie group), ``final`` (p, the chunk's race winners), ``pick`` (grid R:
the row's draws).

The same random numbers as the torch path (``uniform [L]``, ``exp [R, V]``), so a seed gives the same tokens on
either path but where a sum's rounding differs: at the nucleus edge, or for two race values within an ulp. Greedy,
top-k and plain sampling stay on the torch path. On CPU tensors the kernels run in Triton's interpreter (tests).
"""

from __future__ import annotations

import os

import torch

SPLITS = 8  # programs per row: 17 rows x 8 = 136, about one wave on the H200's 132 SMs
WAYS = 64  # thresholds tested per search pass
TILE = 256  # values per loop step of a program ([TILE, WAYS] comparisons in the search)
NUM_WARPS = 4
BIG = 1 << 40  # above any key (rebound as a Triton constexpr when the kernels are built: kernels read only those)
_KERNELS: list = []


def search_passes(key_bits: int, ways: int = WAYS) -> int:
    """Passes until the search interval is one key wide, from the widest possible (2^key_bits + 1 keys)."""
    width, passes = (1 << key_bits) + 1, 0
    while width > 1:
        width, passes = -(-width // ways), passes + 1
    return passes


def _build():
    if _KERNELS:
        return _KERNELS[0]
    import triton
    import triton.language as tl

    @triton.jit
    def _keys(x_raw, KEY_BITS: tl.constexpr):
        """Integer keys in the floats' order (the sign bit's flip: negative floats' other bits reversed)."""
        if KEY_BITS == 16:  # (one return after the branches: the compiler refuses a return inside them)
            k = x_raw.to(tl.int16, bitcast=True).to(tl.int64)
            k = tl.where(k < 0, k ^ 0x7FFF, k)
        else:
            k = x_raw.to(tl.int32, bitcast=True).to(tl.int64)
            k = tl.where(k < 0, k ^ 0x7FFFFFFF, k)
        return k

    @triton.jit
    def _row_stats(mx_ptr, z_ptr, row, splits, inv_t, SB: tl.constexpr):
        """The row's max and sum of exp((x - max) / T) from its chunks' (online-softmax merge)."""
        i = tl.arange(0, SB)
        ok = i < splits
        m = tl.load(mx_ptr + row * splits + i, mask=ok, other=float("-inf"))
        top = tl.max(m, 0)
        z = tl.load(z_ptr + row * splits + i, mask=ok, other=0.0)
        return top, tl.sum(tl.where(m > float("-inf"), z * tl.exp((m - top) * inv_t), 0.0), 0)

    @triton.jit
    def _candidates(lo, hi, WAYS: tl.constexpr):
        """WAYS thresholds splitting (lo, hi] evenly; the last is hi."""
        step = (hi - lo + WAYS - 1) // WAYS
        return tl.minimum(lo + step * (tl.arange(0, WAYS).to(tl.int64) + 1), hi)

    @triton.jit
    def _interval(lo_ptr, hi_ptr, g_ptr, row, rows, splits, limit, PASS, WAYS: tl.constexpr, SB: tl.constexpr):
        """The search interval after pass PASS - 1: the first of its thresholds whose mass above is at most the
        limit becomes hi, the one before it lo (invariant: mass above lo > limit >= mass above hi)."""
        lo = tl.load(lo_ptr + (PASS - 1) * rows + row)
        hi = tl.load(hi_ptr + (PASS - 1) * rows + row)
        c = _candidates(lo, hi, WAYS)
        s = tl.arange(0, SB)
        w = tl.arange(0, WAYS)
        part = tl.load(
            g_ptr + (((PASS - 1) * rows + row) * splits + s[:, None]) * WAYS + w[None, :],
            mask=(s < splits)[:, None],
            other=0.0,
        )
        fits = (tl.sum(part, 0) <= limit) | (c >= hi)
        j = tl.min(tl.where(fits, w, WAYS), 0)
        new_hi = tl.sum(tl.where(w == j, c, 0), 0)
        new_lo = tl.where(j > 0, tl.sum(tl.where(w == j - 1, c, 0), 0), lo)
        return new_lo, new_hi

    for fn in (_keys, _row_stats, _candidates, _interval):  # Triton resolves helpers among the module's globals
        globals()[fn.__name__] = fn
    globals()["BIG"] = tl.constexpr(1 << 40)

    @triton.jit
    def stats_kernel(
        logits_ptr, mx_ptr, z_ptr, kmin_ptr, kmax_ptr, vocab, chunk, stride_l, inv_t,
        TILE: tl.constexpr, KEY_BITS: tl.constexpr,
    ):  # fmt: skip
        row, split = tl.program_id(0), tl.program_id(1)
        splits = tl.num_programs(1)
        lrow = logits_ptr + row.to(tl.int64) * stride_l
        start = split * chunk
        end = tl.minimum(start + chunk, vocab)
        m = float("-inf")
        z = 0.0
        kmin = BIG
        kmax = -BIG
        for t0 in range(start, end, TILE):
            offs = t0 + tl.arange(0, TILE)
            ok = offs < end
            raw = tl.load(lrow + offs, mask=ok, other=0.0)
            x = tl.where(ok, raw.to(tl.float32), float("-inf"))
            k = _keys(raw, KEY_BITS)
            m_new = tl.maximum(m, tl.max(x, 0))
            z = z * tl.exp((m - m_new) * inv_t) + tl.sum(tl.where(ok, tl.exp((x - m_new) * inv_t), 0.0), 0)
            m = m_new
            kmin = tl.minimum(kmin, tl.min(tl.where(ok, k, BIG), 0))
            kmax = tl.maximum(kmax, tl.max(tl.where(ok, k, -BIG), 0))
        out = row * splits + split
        tl.store(mx_ptr + out, m)
        tl.store(z_ptr + out, tl.where(m > float("-inf"), z, 0.0))
        tl.store(kmin_ptr + out, kmin)
        tl.store(kmax_ptr + out, kmax)

    @triton.jit
    def search_kernel(
        logits_ptr, mx_ptr, z_ptr, kmin_ptr, kmax_ptr, lo_ptr, hi_ptr, g_ptr,
        vocab, chunk, stride_l, inv_t, top_p, rows, PASS,
        TILE: tl.constexpr, KEY_BITS: tl.constexpr, WAYS: tl.constexpr, SB: tl.constexpr,
    ):  # fmt: skip
        row, split = tl.program_id(0), tl.program_id(1)
        splits = tl.num_programs(1)
        top, z = _row_stats(mx_ptr, z_ptr, row, splits, inv_t, SB)
        limit = top_p * z
        if PASS == 0:
            i = tl.arange(0, SB)
            lo = tl.min(tl.load(kmin_ptr + row * splits + i, mask=i < splits, other=BIG), 0) - 1
            hi = tl.max(tl.load(kmax_ptr + row * splits + i, mask=i < splits, other=-BIG), 0)
        else:
            lo, hi = _interval(lo_ptr, hi_ptr, g_ptr, row, rows, splits, limit, PASS, WAYS, SB)
        if split == 0:  # every program of the row computes the same interval; one records it
            tl.store(lo_ptr + PASS * rows + row, lo)
            tl.store(hi_ptr + PASS * rows + row, hi)
        c = _candidates(lo, hi, WAYS)
        lrow = logits_ptr + row.to(tl.int64) * stride_l
        start = split * chunk
        end = tl.minimum(start + chunk, vocab)
        g = tl.zeros([WAYS], tl.float32)
        for t0 in range(start, end, TILE):
            offs = t0 + tl.arange(0, TILE)
            ok = offs < end
            raw = tl.load(lrow + offs, mask=ok, other=0.0)
            e = tl.where(ok, tl.exp((raw.to(tl.float32) - top) * inv_t), 0.0)
            k = _keys(raw, KEY_BITS)
            g += tl.sum(tl.where(k[:, None] > c[None, :], e[:, None], 0.0), 0)
        tl.store(g_ptr + ((PASS * rows + row) * splits + split) * WAYS + tl.arange(0, WAYS), g)

    @triton.jit
    def boundary_kernel(
        logits_ptr, mx_ptr, z_ptr, lo_ptr, hi_ptr, g_ptr, vstar_ptr,
        vocab, chunk, stride_l, inv_t, top_p, rows, PASSES,
        TILE: tl.constexpr, KEY_BITS: tl.constexpr, WAYS: tl.constexpr, SB: tl.constexpr,
    ):  # fmt: skip
        row, split = tl.program_id(0), tl.program_id(1)
        splits = tl.num_programs(1)
        top, z = _row_stats(mx_ptr, z_ptr, row, splits, inv_t, SB)
        _, t0_key = _interval(lo_ptr, hi_ptr, g_ptr, row, rows, splits, top_p * z, PASSES, WAYS, SB)
        lrow = logits_ptr + row.to(tl.int64) * stride_l
        start = split * chunk
        end = tl.minimum(start + chunk, vocab)
        v = BIG
        for t0 in range(start, end, TILE):
            offs = t0 + tl.arange(0, TILE)
            ok = offs < end
            k = _keys(tl.load(lrow + offs, mask=ok, other=0.0), KEY_BITS)
            v = tl.minimum(v, tl.min(tl.where(ok & (k >= t0_key), k, BIG), 0))
        tl.store(vstar_ptr + row * splits + split, v)

    @triton.jit
    def group_kernel(
        logits_ptr, mx_ptr, z_ptr, vstar_ptr, above_ptr, count_ptr, estar_ptr,
        vocab, chunk, stride_l, inv_t,
        TILE: tl.constexpr, KEY_BITS: tl.constexpr, SB: tl.constexpr,
    ):  # fmt: skip
        row, split = tl.program_id(0), tl.program_id(1)
        splits = tl.num_programs(1)
        top, _ = _row_stats(mx_ptr, z_ptr, row, splits, inv_t, SB)
        i = tl.arange(0, SB)
        vstar = tl.min(tl.load(vstar_ptr + row * splits + i, mask=i < splits, other=BIG), 0)
        lrow = logits_ptr + row.to(tl.int64) * stride_l
        start = split * chunk
        end = tl.minimum(start + chunk, vocab)
        above = 0.0
        count = 0
        estar = 0.0
        for t0 in range(start, end, TILE):
            offs = t0 + tl.arange(0, TILE)
            ok = offs < end
            raw = tl.load(lrow + offs, mask=ok, other=0.0)
            k = _keys(raw, KEY_BITS)
            e = tl.where(ok, tl.exp((raw.to(tl.float32) - top) * inv_t), 0.0)
            tie = ok & (k == vstar)
            above += tl.sum(tl.where(ok & (k > vstar), e, 0.0), 0)
            count += tl.sum(tie.to(tl.int32), 0)
            estar = tl.maximum(estar, tl.max(tl.where(tie, e, 0.0), 0))
        out = row * splits + split
        tl.store(above_ptr + out, above)
        tl.store(count_ptr + out, count)
        tl.store(estar_ptr + out, estar)

    @triton.jit
    def final_kernel(
        logits_ptr, q_ptr, drafts_ptr, exp_ptr, p_ptr, mx_ptr, z_ptr, vstar_ptr, above_ptr, count_ptr, estar_ptr,
        best_ptr, arg_ptr, pq_ptr,
        vocab, chunk, drafts_n, stride_l, stride_q, stride_e, stride_p, inv_t, top_p,
        TILE: tl.constexpr, KEY_BITS: tl.constexpr, SB: tl.constexpr,
    ):  # fmt: skip
        row, split = tl.program_id(0), tl.program_id(1)
        splits = tl.num_programs(1)
        top, z = _row_stats(mx_ptr, z_ptr, row, splits, inv_t, SB)
        i = tl.arange(0, SB)
        ok_s = i < splits
        vstar = tl.min(tl.load(vstar_ptr + row * splits + i, mask=ok_s, other=BIG), 0)
        above = tl.sum(tl.load(above_ptr + row * splits + i, mask=ok_s, other=0.0), 0)
        counts = tl.load(count_ptr + row * splits + i, mask=ok_s, other=0)
        estar = tl.max(tl.load(estar_ptr + row * splits + i, mask=ok_s, other=0.0), 0)
        n_keep = tl.minimum(tl.sum(counts, 0), ((top_p * z - above) / estar).to(tl.int32) + 1)
        kept_sum = above + n_keep.to(tl.float32) * estar
        seen = tl.sum(tl.where(i < split, counts, 0), 0)  # tie-group members in the chunks before this one
        is_draft = row < drafts_n
        last = tl.minimum(row, drafts_n - 1)  # (the bonus row reads the last draft's row, then ignores it)
        d = tl.where(is_draft, tl.load(drafts_ptr + last), -1)
        lrow = logits_ptr + row.to(tl.int64) * stride_l
        qrow = q_ptr + last.to(tl.int64) * stride_q
        erow = exp_ptr + row.to(tl.int64) * stride_e
        prow = p_ptr + row.to(tl.int64) * stride_p
        start = split * chunk
        end = tl.minimum(start + chunk, vocab)
        pd = 0.0
        qd = 0.0
        best_r = -1.0
        arg_r = 0
        best_p = -1.0
        arg_p = 0
        for t0 in range(start, end, TILE):
            offs = t0 + tl.arange(0, TILE)
            ok = offs < end
            raw = tl.load(lrow + offs, mask=ok, other=0.0)
            k = _keys(raw, KEY_BITS)
            tie = ok & (k == vstar)
            rank = seen + tl.cumsum(tie.to(tl.int32), 0) - 1  # the member's index in its group, vocabulary order
            seen += tl.sum(tie.to(tl.int32), 0)
            keep = ok & ((k > vstar) | (tie & (rank < n_keep)))
            p = tl.where(keep, tl.exp((raw.to(tl.float32) - top) * inv_t) / kept_sum, 0.0)
            tl.store(prow + offs, p, mask=ok)
            ex = tl.load(erow + offs, mask=ok, other=1.0)
            q = tl.where(is_draft, tl.load(qrow + offs, mask=ok, other=0.0), 0.0)  # the bonus row: no proposal
            pd += tl.sum(tl.where(offs == d, p, 0.0), 0)
            qd += tl.sum(tl.where(offs == d, q, 0.0), 0)
            v = tl.where(ok, tl.maximum(p - q, 0.0) / ex, -1.0)
            tile_best = tl.max(v, 0)
            arg_r = tl.where(tile_best > best_r, tl.argmax(v, 0, tie_break_left=True) + t0, arg_r)
            best_r = tl.maximum(best_r, tile_best)
            w = tl.where(ok, p / ex, -1.0)
            tile_best = tl.max(w, 0)
            arg_p = tl.where(tile_best > best_p, tl.argmax(w, 0, tie_break_left=True) + t0, arg_p)
            best_p = tl.maximum(best_p, tile_best)
        out = row * splits + split
        tl.store(best_ptr + out * 2, best_r)
        tl.store(best_ptr + out * 2 + 1, best_p)
        tl.store(arg_ptr + out * 2, arg_r)
        tl.store(arg_ptr + out * 2 + 1, arg_p)
        tl.store(pq_ptr + out * 2, pd)
        tl.store(pq_ptr + out * 2 + 1, qd)

    @triton.jit
    def pick_kernel(
        best_ptr, arg_ptr, pq_ptr, drafts_ptr, uniform_ptr, drawn_ptr, kept_ptr, splits, drafts_n,
        SB: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0)
        i = tl.arange(0, SB)
        ok = i < splits
        base = (row * splits + i) * 2
        best_r = tl.load(best_ptr + base, mask=ok, other=-2.0)
        best_p = tl.load(best_ptr + base + 1, mask=ok, other=-2.0)
        win_r = tl.argmax(best_r, 0, tie_break_left=True)  # the first chunk on ties: its indices come first
        win_p = tl.argmax(best_p, 0, tie_break_left=True)
        arg_r = tl.sum(tl.where(i == win_r, tl.load(arg_ptr + base, mask=ok, other=0), 0), 0)
        arg_p = tl.sum(tl.where(i == win_p, tl.load(arg_ptr + base + 1, mask=ok, other=0), 0), 0)
        pd = tl.sum(tl.load(pq_ptr + base, mask=ok, other=0.0), 0)
        qd = tl.sum(tl.load(pq_ptr + base + 1, mask=ok, other=0.0), 0)
        is_draft = row < drafts_n
        last = tl.minimum(row, drafts_n - 1)
        d = tl.load(drafts_ptr + last)
        u = tl.load(uniform_ptr + last)
        keep_d = is_draft & ((pd >= qd) | (u * qd < pd))
        resampled = tl.where(is_draft & (tl.max(best_r, 0) > 0), arg_r, arg_p)
        tl.store(drawn_ptr + row, tl.where(keep_d, d, resampled.to(tl.int64)))
        tl.store(kept_ptr + row, keep_d.to(tl.int32))  # the bonus row's slot past the drafts: 0, unused

    _KERNELS.append((stats_kernel, search_kernel, boundary_kernel, group_kernel, final_kernel, pick_kernel))
    return _KERNELS[0]


def supported(device: torch.device, sampling) -> bool:
    """Whether ``accept`` computes what ``sampling.sampling_probs`` does for this config: the top-p path alone
    (top-p set, no top-k, the "sort" nucleus, T > 0, kernel "auto"), on CUDA or in Triton's interpreter."""
    if sampling.greedy or sampling.top_p is None or sampling.top_k is not None:
        return False
    if sampling.nucleus != "sort" or sampling.kernel != "auto":
        return False
    from nemo_cosmos_ar.inference import decode_kernel

    if not decode_kernel.available():
        return False
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def accept(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    q: torch.Tensor,
    drafts: torch.Tensor,
    uniform: torch.Tensor,
    exp: torch.Tensor,
    splits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One speculative step's accept/reject (module doc). ``splits``: programs per row (None: ``SPLITS``; tests use
    fewer, the interpreter running programs one by one).

    ``logits [R, V]`` (bf16 or fp32, row-contiguous), ``q [L, V]`` fp32 proposals of the L = R - 1 draft rows,
    ``drafts [L]`` int64, ``uniform [L]`` fp32, ``exp [R, V]`` fp32 Exp(1). Returns ``(drawn [R] int64, kept [L]
    bool, p [R, V] fp32)``: row r < L's token (the draft if kept, else the residual's draw), the last row's draw
    from p, and the sampling distributions.
    """
    if logits.dtype not in (torch.bfloat16, torch.float32):
        logits = logits.float()
    rows, vocab = logits.shape
    n = q.shape[0]
    if n != rows - 1 or q.shape[1] != vocab or exp.shape != logits.shape or drafts.shape != (n,):
        raise ValueError(
            f"accept: logits {tuple(logits.shape)}, q {tuple(q.shape)}, drafts {tuple(drafts.shape)}, "
            f"exp {tuple(exp.shape)} do not fit (q and drafts have one row fewer than the logits)"
        )
    for name, t in (("logits", logits), ("q", q), ("exp", exp)):
        if t.stride(-1) != 1:
            raise ValueError(f"accept: {name} must be row-contiguous")
    if not 0 < top_p <= 1 or temperature <= 0:
        raise ValueError(f"accept: needs 0 < top_p <= 1 and temperature > 0, got {top_p}, {temperature}")
    stats_k, search_k, boundary_k, group_k, final_k, pick_k = _build()
    dev = logits.device
    splits = splits or max(1, min(SPLITS, -(-vocab // TILE)))  # no program without a tile
    per_split = -(-vocab // splits)
    chunk = -(-per_split // TILE) * TILE  # whole tiles
    sb = max(2, 1 << (splits - 1).bit_length())
    key_bits = 16 if logits.dtype == torch.bfloat16 else 32
    passes = search_passes(key_bits)
    inv_t, top_p = 1.0 / float(temperature), float(top_p)
    f32 = {"dtype": torch.float32, "device": dev}
    i64 = {"dtype": torch.int64, "device": dev}
    mx, z, above, estar = (torch.empty(rows, splits, **f32) for _ in range(4))
    kmin, kmax, vstar = (torch.empty(rows, splits, **i64) for _ in range(3))
    count = torch.empty(rows, splits, dtype=torch.int32, device=dev)
    lo, hi = torch.empty(passes, rows, **i64), torch.empty(passes, rows, **i64)
    g = torch.empty(passes, rows, splits, WAYS, **f32)
    best, pq = torch.empty(rows, splits, 2, **f32), torch.empty(rows, splits, 2, **f32)
    arg = torch.empty(rows, splits, 2, **i64)
    p = torch.empty(rows, vocab, **f32)
    drawn = torch.empty(rows, **i64)
    kept = torch.empty(rows, dtype=torch.int32, device=dev)
    grid, sl = (rows, splits), logits.stride(0)
    opts = {"TILE": TILE, "KEY_BITS": key_bits, "num_warps": NUM_WARPS}
    stats_k[grid](logits, mx, z, kmin, kmax, vocab, chunk, sl, inv_t, **opts)
    for k in range(passes):
        search_k[grid](
            logits, mx, z, kmin, kmax, lo, hi, g, vocab, chunk, sl, inv_t, top_p, rows, k, WAYS=WAYS, SB=sb, **opts
        )
    boundary_k[grid](
        logits, mx, z, lo, hi, g, vstar, vocab, chunk, sl, inv_t, top_p, rows, passes, WAYS=WAYS, SB=sb, **opts
    )
    group_k[grid](logits, mx, z, vstar, above, count, estar, vocab, chunk, sl, inv_t, SB=sb, **opts)
    final_k[grid](
        logits, q, drafts, exp, p, mx, z, vstar, above, count, estar, best, arg, pq,
        vocab, chunk, n, sl, q.stride(0), exp.stride(0), p.stride(0), inv_t, top_p, SB=sb, **opts,
    )  # fmt: skip
    pick_k[(rows,)](best, arg, pq, drafts, uniform, drawn, kept, splits, n, SB=sb, num_warps=1)
    return drawn, kept[:n].bool(), p
