"""cosmos-predict1's top-p distribution without a sort: the nucleus's edge found by a 16-way search over the logits'
bit patterns (Triton, CUDA; the interpreter on CPU for tests).

Why: speculative decoding (``speculative.py``) needs every verified row's whole top-p distribution in vocabulary order
(the accept test, the residual, the next proposal). ``sample_kernel.nucleus_probs`` gets it from a stable sort of the
bf16 logits and three tile kernels; on the H200 torch's segmented radix sort alone took 92-242 us of each step at
17-65 rows of 64,000 (BENCHMARKS.md, issue 13, twenty-third session), ~7% of a step at L = 63.

What the nucleus is (``sampling._nucleus_of_sorted``): sort the probabilities descending, equal ones in vocabulary
order, and keep a rank while the mass before it is <= top_p. With ``key(v)`` an integer that orders the logits as
their values (the float's bits, negatives flipped; -0 as +0 so that equal logits tie) and ``G(t)`` the mass of the
tokens whose key is > t, the kept tokens are exactly:

* every token whose key is > t0, t0 being the smallest t with G(t) <= top_p (a key that occurs: G drops there);
* of the tokens whose key is t0, the first n in vocabulary order, n = how many c = 0, 1, ... have
  G(t0) + c * p(t0) <= top_p (at least c = 0, by the choice of t0);
* nothing below t0: such a token has at least G(t0 - 1) > top_p before it.

So no order is needed, only G at a few points: t0's 16 bits (32 for fp32 logits) are found 4 at a time, each round
summing the mass above 16 thresholds that split the interval the previous round left. Launches, each over a grid of
(rows, tiles of ``TILE`` logits); every program of a row derives the same row-wide values (maximum, total mass, the
round's interval) from the partial sums the launch before wrote, summed in the same order, so the result is
deterministic (no atomics) and the same in a CUDA graph:

1. ``max_kernel``: each tile's largest logit.
2. ``round_kernel``, 4 (8) times: the tile's mass above each of the round's 16 thresholds, the first round also its
   whole mass; the last round also how many of its keys equal each of the 16 candidates left.
3. ``write_kernel``: t0, G(t0), n and the kept mass from those sums; each kept token's probability over the kept mass
   to its place in the row, zeros elsewhere (every entry written once: no fill).

Floating-point addition is monotone in each term, so sums over nested sets of tokens stay ordered: G computed this way
is non-increasing in t and the search is consistent. The sums run in another order than torch's cumsum over the sorted
row, so a token whose mass before it is within rounding of top_p can fall the other way; elsewhere the values equal
the ops' up to rounding (tests: ``test_nucleus_kernel.py``).
"""

from __future__ import annotations

import torch

# Launch choices, swept on the H200 (BENCHMARKS.md, issue 13, call a42: TILE 512-4,096 x 2 / 4 / 8 warps): 4,096
# logits on 4 warps was the best at 64 rows (131.1 -> 111.0 us for the whole search, against 2,048 on 4) and within
# 0.6 us of the best at 16 and 32 rows (46.2 -> 39.0, 75.9 -> 64.9). 16 tiles of 64,000 logits a row.
TILE = 4096  # logits per program
BINS = 16  # thresholds a round: 4 bits of t0
NUM_WARPS = 4
_KEY_BITS = {torch.bfloat16: 16, torch.float16: 16, torch.float32: 32}
_KERNELS: list = []


def _build():
    """The kernels, decorated on first use (``TRITON_INTERPRET=1`` is read at decoration time)."""
    if _KERNELS:
        return _KERNELS[0]
    import triton
    import triton.language as tl

    # Module globals, not locals: Triton's interpreter resolves the helpers a kernel calls in the module's globals.
    global _key, _row_max, _pick

    @triton.jit
    def _key(x, KEY_BITS: tl.constexpr):
        """The order-preserving signed integer of the floats ``x``: their bits, negatives flipped; -0 taken as +0."""
        if KEY_BITS == 16:
            b = x.to(tl.int16, bitcast=True).to(tl.int32)
            b = tl.where((b & 0x7FFF) == 0, 0, b)
            return tl.where(b < 0, b ^ 0x7FFF, b)
        else:
            b = x.to(tl.int32, bitcast=True)
            b = tl.where((b & 0x7FFFFFFF) == 0, 0, b)
            return tl.where(b < 0, b ^ 0x7FFFFFFF, b)

    @triton.jit
    def _row_max(mx_ptr, row, tiles, TILES: tl.constexpr):
        t = tl.arange(0, TILES)
        return tl.max(tl.load(mx_ptr + row * tiles + t, mask=t < tiles, other=float("-inf")), axis=0)

    @triton.jit
    def _pick(part_ptr, row, r, tiles, top_p, ROUNDS: tl.constexpr, TILES: tl.constexpr):
        """Round ``r``'s choice: the first of its 16 thresholds with G <= top_p * total mass (the last if none), and
        G there. ``part [rows, ROUNDS, tiles, 32]``: per tile the mass above each threshold; column 16 of round 0 the
        tile's whole mass."""
        t = tl.arange(0, TILES)
        c = tl.arange(0, 32)
        base = part_ptr + (row * ROUNDS + r) * tiles * 32
        g = tl.sum(tl.load(base + t[:, None] * 32 + c[None, :], mask=(t < tiles)[:, None] & (c < 16)[None, :],
                           other=0.0), axis=0)  # fmt: skip
        total = tl.sum(tl.load(part_ptr + row * ROUNDS * tiles * 32 + t * 32 + 16, mask=t < tiles, other=0.0), axis=0)
        j = tl.minimum(tl.sum(((g > top_p * total) & (c < 16)).to(tl.int32), axis=0), 15)
        return j, tl.sum(tl.where(c == j, g, 0.0), axis=0), total

    @triton.jit
    def max_kernel(x_ptr, mx_ptr, vocab, tiles, stride_x, TILE: tl.constexpr):
        row, tile = tl.program_id(0), tl.program_id(1)
        offs = tile * TILE + tl.arange(0, TILE)
        x = tl.load(x_ptr + row * stride_x + offs, mask=offs < vocab, other=float("-inf")).to(tl.float32)
        tl.store(mx_ptr + row * tiles + tile, tl.max(x, axis=0))

    @triton.jit
    def round_kernel(
        x_ptr, mx_ptr, part_ptr, cnt_ptr, lo_ptr, vocab, tiles, stride_x, temperature, top_p,
        ROUND: tl.constexpr, ROUNDS: tl.constexpr, KEY_BITS: tl.constexpr, TILE: tl.constexpr, TILES: tl.constexpr,
    ):  # fmt: skip
        row, tile = tl.program_id(0), tl.program_id(1)
        width = tl.full([], 1, tl.int64) << (KEY_BITS - 4 * (ROUND + 1))  # keys per threshold step this round
        if ROUND == 0:
            lo = -(tl.full([], 1, tl.int64) << (KEY_BITS - 1))
        else:  # the previous round's interval start, moved to the bin its sums chose
            j, _, _ = _pick(part_ptr, row, ROUND - 1, tiles, top_p, ROUNDS, TILES)
            lo = tl.load(lo_ptr + row * ROUNDS + ROUND - 1) + j.to(tl.int64) * (width * 16)
        if tile == 0:  # for the next round and the write (another launch: no program reads what this one writes)
            tl.store(lo_ptr + row * ROUNDS + ROUND, lo)
        top = _row_max(mx_ptr, row, tiles, TILES) / temperature
        offs = tile * TILE + tl.arange(0, TILE)
        valid = offs < vocab
        x = tl.load(x_ptr + row * stride_x + offs, mask=valid, other=0.0)
        key = tl.where(valid, _key(x, KEY_BITS), -(1 << 31) + 1)  # outside the row: below every threshold
        e = tl.where(valid, tl.exp(x.to(tl.float32) / temperature - top), 0.0)
        out = part_ptr + ((row * ROUNDS + ROUND) * tiles + tile) * 32
        for b in tl.static_range(16):
            tl.store(out + b, tl.sum(tl.where(key > (lo + (b + 1) * width - 1).to(tl.int32), e, 0.0), axis=0))
        if ROUND == 0:
            tl.store(out + 16, tl.sum(e, axis=0))
        if ROUND + 1 == ROUNDS:  # width 1: the 16 candidates for t0 are lo + b
            for b in tl.static_range(16):
                n = tl.sum((key == (lo + b).to(tl.int32)).to(tl.int32), axis=0)
                tl.store(cnt_ptr + (row * tiles + tile) * 16 + b, n)

    @triton.jit
    def write_kernel(
        x_ptr, mx_ptr, part_ptr, cnt_ptr, lo_ptr, out_ptr, vocab, tiles, stride_x, stride_out, temperature, top_p,
        ROUNDS: tl.constexpr, KEY_BITS: tl.constexpr, TILE: tl.constexpr, TILES: tl.constexpr,
    ):  # fmt: skip
        row, tile = tl.program_id(0), tl.program_id(1)
        j, above, total = _pick(part_ptr, row, ROUNDS - 1, tiles, top_p, ROUNDS, TILES)
        t0 = (tl.load(lo_ptr + row * ROUNDS + ROUNDS - 1) + j).to(tl.int32)
        t = tl.arange(0, TILES)
        ties = tl.load(cnt_ptr + (row * tiles + t) * 16 + j, mask=t < tiles, other=0)
        before = tl.sum(tl.where(t < tile, ties, 0), axis=0)  # tokens keyed t0 in the tiles before this one
        top = _row_max(mx_ptr, row, tiles, TILES) / temperature
        # p(t0)'s numerator from t0 itself (the key's inverse), so every program of the row has it
        if KEY_BITS == 16:
            xs = tl.where(t0 < 0, t0 ^ 0x7FFF, t0).to(tl.int16).to(x_ptr.dtype.element_ty, bitcast=True)
        else:
            xs = tl.where(t0 < 0, t0 ^ 0x7FFFFFFF, t0).to(x_ptr.dtype.element_ty, bitcast=True)
        # No token keyed t0 happens only at the lowest key, when top_p >= the whole mass (1.0): then the
        # inverse above is a NaN pattern, and nothing is tied (n = 0)
        n_ties = tl.sum(ties, axis=0)
        es = tl.where(n_ties > 0, tl.maximum(tl.exp(xs.to(tl.float32) / temperature - top), 1e-38), 1.0)
        room = tl.minimum(tl.maximum(tl.floor((top_p * total - above) / es), 0.0), n_ties - 1.0)
        n_keep = room.to(tl.int32) + 1
        kept_mass = above + n_keep.to(tl.float32) * es
        offs = tile * TILE + tl.arange(0, TILE)
        valid = offs < vocab
        x = tl.load(x_ptr + row * stride_x + offs, mask=valid, other=0.0)
        key = _key(x, KEY_BITS)
        e = tl.exp(x.to(tl.float32) / temperature - top)
        tie = (key == t0) & valid
        rank = before + tl.cumsum(tie.to(tl.int32), axis=0) - tie.to(tl.int32)  # among the tokens keyed t0
        keep = ((key > t0) | (tie & (rank < n_keep))) & valid
        tl.store(out_ptr + row * stride_out + offs, tl.where(keep, e / kept_mass, 0.0), mask=valid)

    _KERNELS.append((max_kernel, round_kernel, write_kernel))
    return _KERNELS[0]


def nucleus_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """``sampling.sampling_probs`` for the top-p path (no top-k, temperature > 0): ``[B, V]`` fp32 in vocabulary order,
    the nucleus's probabilities over its mass and zeros elsewhere, from ``logits [B, V]`` (bf16, fp16 or fp32, the
    model's dtype: not upcast). 6 launches for 16-bit logits, 10 for fp32; no sort."""
    if logits.ndim != 2 or logits.stride(-1) != 1:
        raise ValueError(f"logits must be a row-contiguous [B, V] tensor, got {tuple(logits.shape)}")
    if not temperature > 0:
        raise ValueError(f"nucleus_probs needs a temperature > 0 (greedy is a one-hot), got {temperature}")
    if logits.dtype not in _KEY_BITS:
        raise ValueError(f"nucleus_probs takes bf16, fp16 or fp32 logits, got {logits.dtype}")
    bits = _KEY_BITS[logits.dtype]
    rounds = bits // 4
    batch, vocab = logits.shape
    tiles = -(-vocab // TILE)
    pad = max(16, 1 << (tiles - 1).bit_length())
    dev = logits.device
    mx = torch.empty(batch, tiles, dtype=torch.float32, device=dev)
    part = torch.empty(batch, rounds, tiles, 32, dtype=torch.float32, device=dev)
    ties = torch.empty(batch, tiles, BINS, dtype=torch.int32, device=dev)
    lo = torch.empty(batch, rounds, dtype=torch.int64, device=dev)
    out = torch.empty(batch, vocab, dtype=torch.float32, device=dev)
    max_k, round_k, write_k = _build()
    t, p, grid = float(temperature), float(top_p), (batch, tiles)
    max_k[grid](logits, mx, vocab, tiles, logits.stride(0), TILE=TILE, num_warps=NUM_WARPS)
    for r in range(rounds):
        round_k[grid](
            logits, mx, part, ties, lo, vocab, tiles, logits.stride(0), t, p,
            ROUND=r, ROUNDS=rounds, KEY_BITS=bits, TILE=TILE, TILES=pad, num_warps=NUM_WARPS,
        )  # fmt: skip
    write_k[grid](
        logits, mx, part, ties, lo, out, vocab, tiles, logits.stride(0), out.stride(0), t, p,
        ROUNDS=rounds, KEY_BITS=bits, TILE=TILE, TILES=pad, num_warps=NUM_WARPS,
    )  # fmt: skip
    return out
