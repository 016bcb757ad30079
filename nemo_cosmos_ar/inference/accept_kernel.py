"""The speculative step's accept/reject (``speculative._Window.advance``) as one Triton kernel, without a sort.

Why: in torch ops the step's sampling distributions (softmax, a full sort of each 64,000-value row for top-p, the
cumsum, the masks, the scatter back to vocabulary order) and the coupled resampling take ~0.9 ms of a 4.5 ms verify
step at L = 16 on the H200 (BENCHMARKS.md, issue 13), most of it the segmented sort.

What it computes, per row r of the verify forward's logits ``[R, V]`` (R = L + 1), with temperature T and top-p:

* **The nucleus without sorting.** With e_i = exp((x_i - max) / T), cosmos-predict1's top-p keeps, in descending
  order, every entry whose mass *before* it is at most ``top_p``: a prefix of the sorted row. With G(t) the mass of
  the entries whose key is above t (keys: the logits' bits mapped to integers in the floats' order), an entry of a
  value v is kept when the mass above v is at most top_p (and, within a group of equal values, in vocabulary order
  while the running mass stays there, as a stable sort would order them). G falls as t rises, so the smallest t
  with G(t) <= top_p is found by bisection over the key range (16 passes for bf16 logits, 32 for fp32); the least
  value at or above it is the boundary, and the boundary group keeps its first ``floor((top_p - G) / e*) + 1``
  members. One program walks its row about 21 times; the row stays in L2.
* **p**, the kept e_i divided by their sum, written in vocabulary order (``P [R, V]``): the next step's proposals.
* **The accept test and the draws** (``speculative.coupled_resample``): for a draft row, keep the draft d with
  probability min(1, p(d)/q(d)) (``u * q(d) < p(d)``), else the race ``argmax(max(p - q, 0) / E)`` (or over p where
  the residual is empty); for the last row, the race ``argmax(p / E)``. First index on ties, as ``torch.argmax``.

The same random numbers as the torch path (``uniform [L]``, ``exp [R, V]``), so a seed gives the same tokens on
either path but where a sum's rounding differs: at the nucleus edge, or for two race values within an ulp. Greedy,
top-k and plain sampling stay on the torch path. On CPU tensors the kernel runs in Triton's interpreter (tests).
"""

from __future__ import annotations

import os

import torch

TILE = 2048
NUM_WARPS = 8
_KERNELS: list = []


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

    globals()["_keys"] = _keys  # Triton resolves a kernel's helper functions among its module's globals

    @triton.jit
    def accept_kernel(
        logits_ptr, q_ptr, drafts_ptr, uniform_ptr, exp_ptr, p_ptr, drawn_ptr, kept_ptr,
        vocab, drafts_n, stride_l, stride_q, stride_e, stride_p, inv_t, top_p,
        TILE: tl.constexpr, KEY_BITS: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0)
        lrow = logits_ptr + row.to(tl.int64) * stride_l
        offs0 = tl.arange(0, TILE)
        # 1. the row's max and its key range
        mx = float("-inf")
        kmin = 1 << 40
        kmax = -(1 << 40)
        for t0 in range(0, vocab, TILE):
            offs = t0 + offs0
            ok = offs < vocab
            raw = tl.load(lrow + offs, mask=ok, other=0.0)
            k = _keys(raw, KEY_BITS)
            mx = tl.maximum(mx, tl.max(tl.where(ok, raw.to(tl.float32), float("-inf")), 0))
            kmin = tl.minimum(kmin, tl.min(tl.where(ok, k, 1 << 40), 0))
            kmax = tl.maximum(kmax, tl.max(tl.where(ok, k, -(1 << 40)), 0))
        # 2. the softmax's denominator
        z = 0.0
        for t0 in range(0, vocab, TILE):
            offs = t0 + offs0
            ok = offs < vocab
            x = tl.load(lrow + offs, mask=ok, other=0.0).to(tl.float32)
            z += tl.sum(tl.where(ok, tl.exp((x - mx) * inv_t), 0.0), 0)
        limit = top_p * z
        # 3. bisection: the least key t with mass(key > t) <= top_p; lo keeps mass above the limit, hi at most it
        lo = kmin - 1
        hi = kmax
        for _ in range(KEY_BITS + 1):
            mid = lo + (hi - lo) // 2
            g = 0.0
            for t0 in range(0, vocab, TILE):
                offs = t0 + offs0
                ok = offs < vocab
                raw = tl.load(lrow + offs, mask=ok, other=0.0)
                e = tl.exp((raw.to(tl.float32) - mx) * inv_t)
                g += tl.sum(tl.where(ok & (_keys(raw, KEY_BITS) > mid), e, 0.0), 0)
            above = g <= limit
            done = hi - lo <= 1
            hi = tl.where(done, hi, tl.where(above, mid, hi))
            lo = tl.where(done, lo, tl.where(above, lo, mid))
        # 4. the boundary: the least present key >= hi, the mass above it, its group's size and e
        vstar = 1 << 40
        for t0 in range(0, vocab, TILE):
            offs = t0 + offs0
            ok = offs < vocab
            k = _keys(tl.load(lrow + offs, mask=ok, other=0.0), KEY_BITS)
            vstar = tl.minimum(vstar, tl.min(tl.where(ok & (k >= hi), k, 1 << 40), 0))
        s_above = 0.0
        n_group = 0
        e_star = 0.0
        for t0 in range(0, vocab, TILE):
            offs = t0 + offs0
            ok = offs < vocab
            raw = tl.load(lrow + offs, mask=ok, other=0.0)
            k = _keys(raw, KEY_BITS)
            e = tl.where(ok, tl.exp((raw.to(tl.float32) - mx) * inv_t), 0.0)
            s_above += tl.sum(tl.where(ok & (k > vstar), e, 0.0), 0)
            n_group += tl.sum((ok & (k == vstar)).to(tl.int32), 0)
            e_star = tl.maximum(e_star, tl.max(tl.where(ok & (k == vstar), e, 0.0), 0))
        n_keep = tl.minimum(n_group, ((limit - s_above) / e_star).to(tl.int32) + 1)
        kept_sum = s_above + n_keep.to(tl.float32) * e_star
        # 5. p in vocabulary order, the draft's p and q, and the two races
        is_draft = row < drafts_n
        last = tl.minimum(row, drafts_n - 1)  # (scalar loads unmasked: the bonus row reads the last draft's, unused)
        d = tl.where(is_draft, tl.load(drafts_ptr + last), -1)
        qrow = q_ptr + last.to(tl.int64) * stride_q
        erow = exp_ptr + row.to(tl.int64) * stride_e
        prow = p_ptr + row.to(tl.int64) * stride_p
        seen = 0
        pd = 0.0
        qd = 0.0
        best_r = -1.0
        arg_r = 0
        best_p = -1.0
        arg_p = 0
        for t0 in range(0, vocab, TILE):
            offs = t0 + offs0
            ok = offs < vocab
            raw = tl.load(lrow + offs, mask=ok, other=0.0)
            k = _keys(raw, KEY_BITS)
            tie = ok & (k == vstar)
            rank = seen + tl.cumsum(tie.to(tl.int32), 0) - 1  # the member's index in its group, vocabulary order
            seen += tl.sum(tie.to(tl.int32), 0)
            keep = ok & ((k > vstar) | (tie & (rank < n_keep)))
            p = tl.where(keep, tl.exp((raw.to(tl.float32) - mx) * inv_t) / kept_sum, 0.0)
            tl.store(prow + offs, p, mask=ok)
            ex = tl.load(erow + offs, mask=ok, other=1.0)
            q = tl.where(is_draft, tl.load(qrow + offs, mask=ok, other=0.0), 0.0)  # the bonus row: no proposal
            pd += tl.sum(tl.where(offs == d, p, 0.0), 0)
            qd += tl.sum(tl.where(offs == d, q, 0.0), 0)
            v = tl.where(ok, tl.maximum(p - q, 0.0) / ex, -1.0)
            tile_best = tl.max(v, 0)
            tile_arg = tl.argmax(v, 0, tie_break_left=True) + t0
            arg_r = tl.where(tile_best > best_r, tile_arg, arg_r)
            best_r = tl.maximum(best_r, tile_best)
            w = tl.where(ok, p / ex, -1.0)
            tile_best = tl.max(w, 0)
            tile_arg = tl.argmax(w, 0, tie_break_left=True) + t0
            arg_p = tl.where(tile_best > best_p, tile_arg, arg_p)
            best_p = tl.maximum(best_p, tile_best)
        u = tl.load(uniform_ptr + last)
        keep_d = is_draft & ((pd >= qd) | (u * qd < pd))
        resampled = tl.where(is_draft & (best_r > 0), arg_r, arg_p)
        tl.store(drawn_ptr + row, tl.where(keep_d, d, resampled.to(tl.int64)))
        tl.store(kept_ptr + row, keep_d.to(tl.int32))  # the bonus row's slot past the drafts: 0, unused

    _KERNELS.append(accept_kernel)
    return accept_kernel


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One speculative step's accept/reject (module doc).

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
    kernel = _build()
    p = torch.empty(rows, vocab, dtype=torch.float32, device=logits.device)
    drawn = torch.empty(rows, dtype=torch.int64, device=logits.device)
    kept = torch.empty(rows, dtype=torch.int32, device=logits.device)
    kernel[(rows,)](
        logits, q, drafts, uniform, exp, p, drawn, kept,
        vocab, n, logits.stride(0), q.stride(0), exp.stride(0), p.stride(0), 1.0 / float(temperature), float(top_p),
        TILE=TILE, KEY_BITS=16 if logits.dtype == torch.bfloat16 else 32, num_warps=NUM_WARPS,
    )  # fmt: skip
    return drawn, kept[:n].bool(), p
