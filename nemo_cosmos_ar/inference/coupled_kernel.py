"""Speculative decoding's residual races and proposal carry as Triton kernels (CUDA; the interpreter on CPU for tests).

Why: after the verify forward, ``speculative._Window.advance`` made about a dozen passes over ``[L + 1, 64,000]`` fp32
rows with torch ops: the residual ``max(p - q, 0)``, its row sums, the fallback to p, the race's division and argmax,
the bonus row's race, then the next proposals (``index_select`` of p's rows, a one-hot scatter, ``where``, a copy).
At L = 63 each pass moves 16 MB, ~0.1-0.15 ms of a 3.5 ms step on the H200 (BENCHMARKS.md, issue 13). Here:

* ``residual_race(p, q, exp)``: per row the draw ``argmax(r / E)`` from ``r = max(p - q, 0)`` (rows < L; the last
  row, the bonus, races p itself), or from p where r is all zero -- the same token the torch ops pick: the same fp32
  subtraction and division, the first index on ties as ``torch.argmax``. Two launches: tiles, then the rows' pick.
* ``carry_proposals(q, p, src, carried, tokens, uniform)``: ``q[i] = p[src[i]]`` where carried, else the new draft's
  proposal (a point mass on ``tokens[i]``, or 1/V when ``uniform``), written in one pass.
"""

from __future__ import annotations

import torch

TILE = 2048
NUM_WARPS = 4
_KERNELS: list = []


def _build():
    if _KERNELS:
        return _KERNELS[0]
    import triton
    import triton.language as tl

    @triton.jit
    def race_tiles(p_ptr, q_ptr, e_ptr, best_ptr, idx_ptr, any_ptr, pbest_ptr, pidx_ptr, vocab, tiles, last,
                   stride_p, stride_q, stride_e, TILE: tl.constexpr):  # fmt: skip
        """Grid (rows, tiles): the tile's best r / E and p / E with their indices, and whether r has a positive
        entry. Row ``last`` has no q (r = p)."""
        row, tile = tl.program_id(0), tl.program_id(1)
        offs = tile * TILE + tl.arange(0, TILE)
        valid = offs < vocab
        p = tl.load(p_ptr + row * stride_p + offs, mask=valid, other=0.0)
        has_q = (tl.zeros([TILE], tl.int32) + row) < last  # (a scalar in the mask upsets the interpreter)
        q = tl.load(q_ptr + row * stride_q + offs, mask=valid & has_q, other=0.0)
        e = tl.load(e_ptr + row * stride_e + offs, mask=valid, other=1.0)
        r = tl.maximum(p - q, 0.0)
        vr = tl.where(valid, r / e, -1.0)
        vp = tl.where(valid, p / e, -1.0)
        out = row * tiles + tile
        tl.store(best_ptr + out, tl.max(vr, axis=0))
        tl.store(idx_ptr + out, tl.argmax(vr, axis=0, tie_break_left=True).to(tl.int32) + tile * TILE)
        tl.store(any_ptr + out, tl.max(tl.where(valid & (r > 0.0), 1, 0), axis=0))
        tl.store(pbest_ptr + out, tl.max(vp, axis=0))
        tl.store(pidx_ptr + out, tl.argmax(vp, axis=0, tie_break_left=True).to(tl.int32) + tile * TILE)

    @triton.jit
    def race_pick(best_ptr, idx_ptr, any_ptr, pbest_ptr, pidx_ptr, out_ptr, tiles, TILES: tl.constexpr):
        """Grid (rows,): the residual's winner (the first tile on ties: its indices come first), or p's where the
        residual is all zero."""
        row = tl.program_id(0)
        t = tl.arange(0, TILES)
        ok = t < tiles
        base = row * tiles
        positive = tl.max(tl.load(any_ptr + base + t, mask=ok, other=0), axis=0) > 0
        best = tl.load(best_ptr + base + t, mask=ok, other=-2.0)
        pbest = tl.load(pbest_ptr + base + t, mask=ok, other=-2.0)
        win_r = tl.argmax(best, axis=0, tie_break_left=True)
        win_p = tl.argmax(pbest, axis=0, tie_break_left=True)
        tok_r = tl.load(idx_ptr + base + win_r)
        tok_p = tl.load(pidx_ptr + base + win_p)
        tl.store(out_ptr + row, tl.where(positive, tok_r, tok_p).to(tl.int64))

    @triton.jit
    def carry_kernel(q_ptr, p_ptr, src_ptr, carried_ptr, tok_ptr, vocab, stride_q, stride_p,
                     UNIFORM: tl.constexpr, TILE: tl.constexpr):  # fmt: skip
        """Grid (L, tiles): one tile of the next proposal row."""
        row, tile = tl.program_id(0), tl.program_id(1)
        offs = tile * TILE + tl.arange(0, TILE)
        valid = offs < vocab
        carried = (tl.zeros([TILE], tl.int32) + tl.load(carried_ptr + row).to(tl.int32)) != 0
        src = tl.load(src_ptr + row)
        p = tl.load(p_ptr + src * stride_p + offs, mask=valid & carried, other=0.0)
        if UNIFORM:
            new = tl.full([TILE], 1.0, tl.float32) / vocab
        else:
            new = tl.where(offs == tl.load(tok_ptr + row), 1.0, 0.0)
        tl.store(q_ptr + row * stride_q + offs, tl.where(carried, p, new), mask=valid)

    _KERNELS.append((race_tiles, race_pick, carry_kernel))
    return _KERNELS[0]


def residual_race(p: torch.Tensor, q: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
    """``p [R, V]``, ``q [R - 1, V]``, ``exp [R, V]`` fp32 (rows of unit stride). Returns ``[R]`` int64: row i < R - 1
    races ``max(p_i - q_i, 0)`` (p_i where that is all zero), row R - 1 races p (``speculative.coupled_resample``'s
    residual draw and the bonus draw)."""
    rows, vocab = p.shape
    if q.shape != (rows - 1, vocab) or exp.shape != p.shape:
        raise ValueError(f"p {tuple(p.shape)}, q {tuple(q.shape)}, exp {tuple(exp.shape)}: q needs one row fewer")
    if any(t.dtype != torch.float32 or t.stride(-1) != 1 for t in (p, q, exp)):
        raise ValueError("p, q and exp must be fp32 with rows of unit stride")
    tiles = -(-vocab // TILE)
    dev = p.device
    best, pbest = (torch.empty(rows, tiles, dtype=torch.float32, device=dev) for _ in range(2))
    idx, pidx, positive = (torch.empty(rows, tiles, dtype=torch.int32, device=dev) for _ in range(3))
    out = torch.empty(rows, dtype=torch.int64, device=dev)
    tiles_k, pick_k, _ = _build()
    q_arg = q if rows > 1 else p  # a valid pointer; no row reads it
    tiles_k[(rows, tiles)](
        p, q_arg, exp, best, idx, positive, pbest, pidx, vocab, tiles, rows - 1,
        p.stride(0), q_arg.stride(0), exp.stride(0), TILE=TILE, num_warps=NUM_WARPS,
    )  # fmt: skip
    pad = max(16, 1 << (tiles - 1).bit_length())
    pick_k[(rows,)](best, idx, positive, pbest, pidx, out, tiles, TILES=pad, num_warps=1)
    return out


def carry_proposals(
    q: torch.Tensor, p: torch.Tensor, src: torch.Tensor, carried: torch.Tensor, tokens: torch.Tensor, uniform: bool
) -> torch.Tensor:
    """In place, returning ``q``: ``q[i] = p[src[i]]`` where ``carried[i]``, else a point mass on ``tokens[i]`` (or 1/V when
    ``uniform``). ``q [L, V]``, ``p [L + 1, V]`` fp32 with rows of unit stride; ``src``, ``tokens`` ``[L]`` int64,
    ``carried [L]`` bool."""
    rows, vocab = q.shape
    if p.shape[1] != vocab or q.stride(-1) != 1 or p.stride(-1) != 1:
        raise ValueError(f"q {tuple(q.shape)} and p {tuple(p.shape)} must share V and have rows of unit stride")
    _build()[2][(rows, -(-vocab // TILE))](
        q, p, src, carried, tokens, vocab, q.stride(0), p.stride(0), UNIFORM=uniform, TILE=TILE, num_warps=NUM_WARPS
    )
    return q
