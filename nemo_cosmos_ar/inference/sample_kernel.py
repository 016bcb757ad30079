"""cosmos-predict1's top-p draw as one sort and three small Triton kernels (CUDA), instead of a dozen torch ops.

Why: at batch 1 the AR decode's sampler is ~0.1 ms of each ~1.7 ms token on the H200 (BENCHMARKS.md, issue 13:
the 64,000-way radix sort of the fp32 probabilities 0.041 ms, the one-row softmax 0.018, the argmax 0.016, the
cumsum, masks, divisions and the gather the rest), ~0.7 s of a 7,680-token video. Each of those kernels reduces one
64,000-value row with a handful of thread blocks, so they are launch- and latency-bound, not bandwidth-bound.

What it computes is ``sampling.sample`` for the top-p path (``top_p`` set, no ``top_k``), the same draw:

1. ``order = sort(logits, descending, stable)`` in the logits' own dtype (bf16 from the model: a 16-bit radix key,
   half the passes of the fp32 probabilities). ``softmax(logits / T)`` is increasing in the logits and equal logits
   give equal probabilities, so this is the reference's order, ties included (both sorts are stable: equal values
   stay in vocabulary order). The one exception, logits so far below the maximum that their probability underflows
   to the same value, lies past any nucleus.
2. ``race = Exp(1)`` drawn exactly as the reference draws it (``sampling.exponential_draw``, one ``[B, V]`` fill per
   step from the same generator), so a seed consumes the same random numbers.
3. Three small Triton kernels over tiles of the sorted row (``TILE`` ranks per program, all tiles at once; one
   program doing the whole row tile after tile took 41-59 us on the H200, BENCHMARKS.md issue 13): each tile's sum
   of ``exp(x - max)`` (the maximum is the first sorted value); then per tile the probabilities, the mass before
   each rank (the tiles before it from those sums, then a scan), the kept ranks (``before <= top_p``, the
   reference's ``masked_fill(before > top_p, 0)``) and the tile's race winner ``argmax(p / race[rank])`` among
   them; then the best tile (the first on ties, as ``torch.argmax``) and its winner's token id ``order[rank]``.

Two differences from the reference's arithmetic, both at the level of rounding: the sums run in another order (tile
sums, not torch's scans), so a rank whose mass before it is within rounding of ``top_p`` can fall the other way; and
the race compares ``p / race`` where the reference compares ``(p / kept_sum) / race`` -- the same order but for two
race values within an ulp. Same distribution, same random numbers, the same token nearly always (tests: every row
whose nucleus agrees draws the reference's token; the H200 bench: 500 of 500 draws per spread), and the same token
for the same seed always. On the H200 a draw takes 41 us instead of 112 in a CUDA graph, and the AR decode of one
video 12.4 s instead of 13.1. Triton is imported on first use; on CPU tensors the kernels run in Triton's
interpreter (tests only: generate uses them on CUDA).

Speculative decoding needs each verified row's whole top-p distribution rather than one draw; ``nucleus_kernel``
gives it without a sort (a sort-based version of it here took twice as long at 64 rows: BENCHMARKS.md, issue 13).
"""

from __future__ import annotations

import torch

TILE = 2048  # sorted values per program
NUM_WARPS = 4
_KERNELS: list = []


def _build():
    """The three kernels, decorated on first use (``TRITON_INTERPRET=1`` is read at decoration time)."""
    if _KERNELS:
        return _KERNELS[0]
    import triton
    import triton.language as tl

    @triton.jit
    def mass_kernel(keys_ptr, mass_ptr, vocab, tiles, stride_k, temperature, TILE: tl.constexpr):
        """Grid (rows, tiles): each tile's sum of exp(x - max) (the max is the row's first sorted value)."""
        row, tile = tl.program_id(0), tl.program_id(1)
        keys = keys_ptr + row * stride_k
        offs = tile * TILE + tl.arange(0, TILE)
        top = tl.load(keys).to(tl.float32) / temperature
        x = tl.load(keys + offs, mask=offs < vocab, other=float("-inf")).to(tl.float32) / temperature
        tl.store(mass_ptr + row * tiles + tile, tl.sum(tl.exp(x - top), axis=0))

    @triton.jit
    def tile_kernel(
        keys_ptr, race_ptr, mass_ptr, best_ptr, rank_ptr, last_ptr,
        vocab, tiles, stride_k, stride_r, temperature, top_p,
        TILE: tl.constexpr, TILES: tl.constexpr,
    ):  # fmt: skip
        """Grid (rows, tiles): the tile's probabilities, the mass before each rank (the tiles before it from the
        partial sums, then a scan), which ranks are kept, and the tile's race winner among them."""
        row, tile = tl.program_id(0), tl.program_id(1)
        keys = keys_ptr + row * stride_k
        t = tl.arange(0, TILES)
        mass = tl.load(mass_ptr + row * tiles + t, mask=t < tiles, other=0.0)
        denom = tl.sum(mass, axis=0)  # the same sum, in the same order, in every program of the row
        before_tile = tl.sum(tl.where(t < tile, mass, 0.0), axis=0) / denom
        offs = tile * TILE + tl.arange(0, TILE)
        valid = offs < vocab
        top = tl.load(keys).to(tl.float32) / temperature
        x = tl.load(keys + offs, mask=valid, other=float("-inf")).to(tl.float32) / temperature
        p = tl.exp(x - top) / denom
        run = tl.cumsum(p, axis=0) + before_tile
        keep = ((run - p) <= top_p) & valid  # kept while the mass before the rank is <= top_p
        e = tl.load(race_ptr + row * stride_r + offs, mask=valid, other=1.0)
        v = tl.where(keep, p / e, -1.0)
        out = row * tiles + tile
        tl.store(best_ptr + out, tl.max(v, axis=0))
        tl.store(rank_ptr + out, tl.argmax(v, axis=0, tie_break_left=True).to(tl.int32) + tile * TILE)
        tl.store(last_ptr + out, tl.max(tl.where(keep, offs + 1, 0), axis=0))

    @triton.jit
    def pick_kernel(best_ptr, rank_ptr, last_ptr, order_ptr, out_ptr, kept_ptr, tiles, stride_o, TILES: tl.constexpr):
        """Grid (rows,): the best tile (the first on ties: its ranks come first), its winner's token id."""
        row = tl.program_id(0)
        t = tl.arange(0, TILES)
        best = tl.load(best_ptr + row * tiles + t, mask=t < tiles, other=-2.0)
        win = tl.argmax(best, axis=0, tie_break_left=True)
        rank = tl.load(rank_ptr + row * tiles + win)
        tl.store(out_ptr + row, tl.load(order_ptr + row * stride_o + rank))
        tl.store(kept_ptr + row, tl.max(tl.load(last_ptr + row * tiles + t, mask=t < tiles, other=0), axis=0))

    _KERNELS.append((mass_kernel, tile_kernel, pick_kernel))
    return _KERNELS[0]


def _tile_masses(keys: torch.Tensor, temperature: float) -> tuple[int, int, torch.Tensor]:
    """``(tiles, tiles padded to a power of two >= 16, each tile's sum of exp(x - max) [B, tiles])`` of sorted rows."""
    batch, vocab = keys.shape
    tiles = -(-vocab // TILE)
    mass = torch.empty(batch, tiles, dtype=torch.float32, device=keys.device)
    _build()[0][(batch, tiles)](
        keys, mass, vocab, tiles, keys.stride(0), float(temperature), TILE=TILE, num_warps=NUM_WARPS
    )
    return tiles, max(16, 1 << (tiles - 1).bit_length()), mass


def race_sorted(
    keys: torch.Tensor, order: torch.Tensor, race: torch.Tensor, temperature: float, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernels on already sorted rows: ``keys [B, V]`` (descending logits, any float dtype), ``order [B, V]``
    (their token ids), ``race [B, V]`` (fp32 Exp(1) draws, > 0). Returns ``(token ids [B] int64, kept [B] int32)``;
    kept is one past the last kept rank (the nucleus size when it is a prefix, as it is but for rounding)."""
    batch, vocab = keys.shape
    if order.shape != keys.shape or race.shape != keys.shape:
        raise ValueError(f"keys {tuple(keys.shape)}, order {tuple(order.shape)}, race {tuple(race.shape)} must match")
    if keys.stride(-1) != 1 or order.stride(-1) != 1 or race.stride(-1) != 1 or race.dtype != torch.float32:
        raise ValueError("keys, order and race must be row-contiguous, race fp32")
    _, tile_k, pick_k = _build()
    tiles, pad, mass = _tile_masses(keys, temperature)
    dev = keys.device
    best = torch.empty(batch, tiles, dtype=torch.float32, device=dev)
    rank = torch.empty(batch, tiles, dtype=torch.int32, device=dev)
    last = torch.empty(batch, tiles, dtype=torch.int32, device=dev)
    out = torch.empty(batch, dtype=order.dtype, device=dev)
    kept = torch.empty(batch, dtype=torch.int32, device=dev)
    t, p = float(temperature), float(top_p)
    tile_k[(batch, tiles)](
        keys, race, mass, best, rank, last, vocab, tiles, keys.stride(0), race.stride(0), t, p,
        TILE=TILE, TILES=pad, num_warps=NUM_WARPS,
    )  # fmt: skip
    pick_k[(batch,)](best, rank, last, order, out, kept, tiles, order.stride(0), TILES=pad, num_warps=1)
    return out, kept


def sample_top_p(logits: torch.Tensor, temperature: float, top_p: float, race: torch.Tensor) -> torch.Tensor:
    """One token per row of ``logits [B, V]`` (the model's dtype, not upcast: the sort key), drawn with the race
    ``race [B, V]`` (``sampling.exponential_draw``'s fp32 values). Returns ``[B]`` int64 token ids."""
    keys, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    return race_sorted(keys, order, race, temperature, top_p)[0]
