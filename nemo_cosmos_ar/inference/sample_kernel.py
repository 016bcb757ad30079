"""cosmos-predict1's top-p draw as one sort and one Triton kernel (CUDA), instead of a dozen small torch ops.

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
3. ``_race_kernel``, one program per row, walking the sorted row in tiles: pass 1 the softmax denominator (the
   maximum is the first sorted value); pass 2 the running mass before each rank, which ranks are kept
   (``before <= top_p``, the reference's ``masked_fill(before > top_p, 0)``) and their sum; pass 3, over the tiles up
   to the last kept rank, ``argmax((p / kept_sum) / race[rank])`` (first maximum on ties, as ``torch.argmax``), and
   the winner's token id ``order[rank]``.

The arithmetic is the reference's in fp32 but summed in another order (tile sums, not torch's scans), so a rank at
the nucleus edge, or two race values within an ulp, can come out the other way: the same distribution and the same
random numbers, the same token nearly always (tests: every token equal over 200 random rows in the interpreter), the
same token for the same seed always. Triton is imported on first use; on CPU tensors the kernel runs in Triton's
interpreter (tests only: generate uses it on CUDA).
"""

from __future__ import annotations

import torch

TILE = 2048  # sorted values per step of a program's walk
NUM_WARPS = 8
_KERNEL: list = []


def _build():
    """The kernel, decorated on first use (``TRITON_INTERPRET=1`` is read at decoration time)."""
    if _KERNEL:
        return _KERNEL[0]
    import triton
    import triton.language as tl

    @triton.jit
    def race_kernel(
        keys_ptr, order_ptr, race_ptr, out_ptr, kept_ptr,
        vocab, stride_k, stride_o, stride_r, temperature, top_p,
        TILE: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0)
        keys = keys_ptr + row * stride_k
        lanes = tl.arange(0, TILE)
        top = tl.load(keys).to(tl.float32) / temperature  # the row's maximum: it sorts first
        # Pass 1: the softmax denominator (sum of exp(x - max); a padded lane is -inf -> 0).
        acc = tl.zeros([TILE], dtype=tl.float32)
        for start in range(0, vocab, TILE):
            offs = start + lanes
            x = tl.load(keys + offs, mask=offs < vocab, other=float("-inf")).to(tl.float32) / temperature
            acc += tl.exp(x - top)
        denom = tl.sum(acc, axis=0)
        # Pass 2: the mass before each rank, the kept ranks, their sum, and the last kept rank.
        carry = tl.zeros([], dtype=tl.float32)
        kept_sum = tl.zeros([], dtype=tl.float32)
        last = tl.zeros([], dtype=tl.int32)
        for start in range(0, vocab, TILE):
            offs = start + lanes
            x = tl.load(keys + offs, mask=offs < vocab, other=float("-inf")).to(tl.float32) / temperature
            p = tl.exp(x - top) / denom
            run = tl.cumsum(p, axis=0) + carry
            keep = ((run - p) <= top_p) & (offs < vocab)
            kept_sum += tl.sum(tl.where(keep, p, 0.0), axis=0)
            last = tl.maximum(last, tl.max(tl.where(keep, offs + 1, 0), axis=0))
            carry = tl.max(run, axis=0)  # p >= 0, so the running mass only grows: its max is the tile's last value
        # Pass 3: the exponential race over the kept ranks, ranks past the last kept one never read.
        best = tl.full([], -1.0, dtype=tl.float32)
        best_rank = tl.zeros([], dtype=tl.int32)
        carry = tl.zeros([], dtype=tl.float32)
        for start in range(0, last, TILE):
            offs = start + lanes
            x = tl.load(keys + offs, mask=offs < vocab, other=float("-inf")).to(tl.float32) / temperature
            p = tl.exp(x - top) / denom
            run = tl.cumsum(p, axis=0) + carry
            keep = ((run - p) <= top_p) & (offs < vocab)
            e = tl.load(race_ptr + row * stride_r + offs, mask=offs < vocab, other=1.0)
            v = tl.where(keep, tl.where(keep, p, 0.0) / kept_sum / e, -1.0)
            tile_best = tl.max(v, axis=0)
            tile_rank = tl.argmax(v, axis=0, tie_break_left=True).to(tl.int32) + start
            take = tile_best > best  # strict: an earlier tile keeps a tie, as argmax's first maximum
            best_rank = tl.where(take, tile_rank, best_rank)
            best = tl.maximum(best, tile_best)
            carry = tl.max(run, axis=0)
        tl.store(out_ptr + row, tl.load(order_ptr + row * stride_o + best_rank))
        tl.store(kept_ptr + row, last)

    _KERNEL.append(race_kernel)
    return race_kernel


def race_sorted(
    keys: torch.Tensor, order: torch.Tensor, race: torch.Tensor, temperature: float, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel on already sorted rows: ``keys [B, V]`` (descending logits, any float dtype), ``order [B, V]``
    (their token ids), ``race [B, V]`` (fp32 Exp(1) draws, > 0). Returns ``(token ids [B] int64, kept [B] int32)``;
    kept is one past the last kept rank (the nucleus size when it is a prefix, as it is but for rounding)."""
    batch, vocab = keys.shape
    if order.shape != keys.shape or race.shape != keys.shape:
        raise ValueError(f"keys {tuple(keys.shape)}, order {tuple(order.shape)}, race {tuple(race.shape)} must match")
    if keys.stride(-1) != 1 or order.stride(-1) != 1 or race.stride(-1) != 1 or race.dtype != torch.float32:
        raise ValueError("keys, order and race must be row-contiguous, race fp32")
    out = torch.empty(batch, dtype=order.dtype, device=keys.device)
    kept = torch.empty(batch, dtype=torch.int32, device=keys.device)
    _build()[(batch,)](
        keys, order, race, out, kept,
        vocab, keys.stride(0), order.stride(0), race.stride(0), float(temperature), float(top_p),
        TILE=TILE, num_warps=NUM_WARPS,
    )  # fmt: skip
    return out, kept


def sample_top_p(logits: torch.Tensor, temperature: float, top_p: float, race: torch.Tensor) -> torch.Tensor:
    """One token per row of ``logits [B, V]`` (the model's dtype, not upcast: the sort key), drawn with the race
    ``race [B, V]`` (``sampling.exponential_draw``'s fp32 values). Returns ``[B]`` int64 token ids."""
    keys, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    return race_sorted(keys, order, race, temperature, top_p)[0]
