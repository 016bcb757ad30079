"""The diffusion decoder on two GPUs: the two passes of classifier-free guidance on two ranks.

Each of the 15 sampling steps runs the DiT twice on the same noisy latent, once with the conditioning (the tokens and
the generic prompt) and once without (token 0 everywhere, a zero prompt), and combines the two outputs. The passes are
independent, so with two ranks each runs one of them at batch 1 and they swap their outputs (a ``[16, 8, 80, 128]``
latent, 2.6 MB in bf16, per step): the step's DiT time halves and every rank then computes the same Euler update
from the same two tensors, so the state stays identical on both without any other exchange. The outputs equal one
rank's unbatched sampling (``SamplerConfig(batch_guidance=False)``) exactly: the same kernels on the same inputs.

cosmos-predict1 splits its decoder over GPUs by context parallelism instead (the sequence of one pass cut across
ranks, with attention exchanging keys and values every layer); for two GPUs the guidance split needs no change to the
network and one small exchange per step. With four or more ranks both are used (``make_split``): the even ranks run
the conditional pass and the odd ranks the unconditional one, each pass cut by context parallelism over the ranks of
its parity (``ContextParallel``: every rank holds about ``1 / size`` of the 20,480 tokens, the self-attention gathers the
keys and values of all of them every layer, and the output is gathered at the end), and rank ``2 i`` swaps outputs
with rank ``2 i + 1``. With an odd count the last rank takes no part.

Rank 0 (role 0, the first of its context group) decodes the latents to frames (the CV8x8x8 decoder lives there
only); every other rank returns no video.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class ContextParallel:
    """This rank's part of one guidance pass cut along the token sequence.

    Attributes:
        index: this rank's place in the group: of ``S`` tokens it holds ``[index * S // size, (index + 1) * S //
            size)`` (the counts differ by at most one when ``size`` does not divide ``S``).
        size: ranks in the group (>= 2).
        group: their process group.
        local: a stand-in: ``gather`` makes the whole length from this rank's slice instead of communicating.
        total: the sequence length of the forward in progress (set by ``span``; ``gather`` needs it).
    """

    index: int
    size: int
    group: object | None = None
    local: bool = False
    total: int = 0

    def __post_init__(self) -> None:
        if self.size < 2 or not 0 <= self.index < self.size:
            raise ValueError(
                f"context parallelism needs index in [0, size) and size >= 2, got {self.index}, {self.size}"
            )

    def bounds(self, i: int) -> tuple[int, int]:
        return i * self.total // self.size, (i + 1) * self.total // self.size

    def span(self, s: int) -> tuple[int, int]:
        """This rank's ``[lo, hi)`` of ``s`` tokens, and ``s`` recorded as the length the gathers rebuild."""
        if s < self.size:
            raise ValueError(f"context parallelism over {self.size} GPUs needs at least {self.size} tokens, got {s}")
        self.total = s
        return self.bounds(self.index)

    def stand_in(self) -> ContextParallel:
        """The same shapes with no communication: for a warm-up that one rank runs alone, which must not wait for
        the others."""
        return dataclasses.replace(self, group=None, local=True)

    def gather(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """The whole ``total`` along ``dim`` from every rank's slice (in rank order). Uneven slices travel padded
        to the longest (one all-gather needs equal parts) and are cut back after."""
        if self.local:
            reps = -(-self.total // x.shape[dim])
            return torch.cat([x] * reps, dim=dim).narrow(dim, 0, self.total)
        x = x.movedim(dim, 0)
        m = -(-self.total // self.size)  # the longest slice
        if x.shape[0] < m:
            x = torch.cat([x, x.new_zeros((m - x.shape[0], *x.shape[1:]))])
        out = torch.empty((self.size * m, *x.shape[1:]), dtype=x.dtype, device=x.device)
        dist.all_gather_into_tensor(out, x.contiguous(), group=self.group)
        if self.total % self.size:  # drop each short slice's padding
            parts = [out[i * m : i * m + (hi - lo)] for i, (lo, hi) in enumerate(map(self.bounds, range(self.size)))]
            out = torch.cat(parts)
        return out.movedim(0, dim)


@dataclass(frozen=True)
class GuidanceSplit:
    """This rank's part of a guidance split.

    Attributes:
        role: 0 = the conditional pass (and the frames, on rank 0); 1 = the unconditional pass.
        group: the process group of this rank and its partner of the other role (role 0 first); None = the default
            group, which must then hold exactly these two ranks.
        cp: this pass's context parallelism (four or more ranks), or None.
        everyone: the process group of every rank of the split (failures are agreed on over it); None = the
            default group, or ``group`` when there is no context parallelism.
    """

    role: int
    group: object | None = None
    cp: ContextParallel | None = None
    everyone: object | None = None

    def __post_init__(self) -> None:
        if self.role not in (0, 1):
            raise ValueError(f"a guidance split has roles 0 (conditional) and 1 (unconditional), got {self.role}")

    @property
    def makes_frames(self) -> bool:
        """Only the first conditional rank decodes the latents to frames."""
        return self.role == 0 and (self.cp is None or self.cp.index == 0)

    @property
    def ranks(self) -> int:
        return 2 if self.cp is None else 2 * self.cp.size

    def exchange(self, mine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(conditional, unconditional)`` outputs from this rank's ``mine`` and the other rank's."""
        b = mine.shape[0]
        both = torch.empty((2 * b, *mine.shape[1:]), dtype=mine.dtype, device=mine.device)  # role 0's rows first
        dist.all_gather_into_tensor(both, mine.contiguous(), group=self.group)
        return both[:b], both[b:]

    def agree(self, error: BaseException | None, what: str) -> None:
        """Raise on every rank of the split when ``what`` failed on any (else the others would wait in the next
        exchange forever): this rank's own error as it is, another rank's as a ``ValueError`` carrying its
        message."""
        messages: list[str | None] = [None] * self.ranks
        group = self.group if self.cp is None else self.everyone
        dist.all_gather_object(messages, None if error is None else str(error), group=group)
        if error is not None:
            raise error
        failed = [(i, m) for i, m in enumerate(messages) if m is not None]
        if failed:
            i, other = failed[0]
            where = "the other GPU" if self.cp is None else f"GPU {i}"  # with context parallelism: its rank
            raise ValueError(f"{what} failed on {where} of the guidance split: {other}")


def split_for_rank(rank: int, world: int, group: object | None = None) -> GuidanceSplit | None:
    """The two-rank split of ``rank`` in a run of ``world`` ranks: ranks 0 and 1 share the decoder when there are
    two or more; None for a single process and for ranks 2 and up (they take no part)."""
    if world < 2 or rank > 1:
        return None
    return GuidanceSplit(rank, group)


def make_split(rank: int, world: int, context_parallel: bool) -> GuidanceSplit | None:
    """The split of ``rank``, making the process groups it needs. A collective: every rank calls it, with the same
    arguments. ``context_parallel`` and four or more ranks: the guidance split over pairs, each pass cut over the
    ``world // 2`` ranks of its parity (an odd last rank takes no part); else the two-rank split of
    ``split_for_rank``."""
    if not context_parallel or world < 4:
        group = None if world == 2 else dist.new_group([0, 1])  # every rank makes the group; ranks 0, 1 use it
        return split_for_rank(rank, world, group)
    n = world // 2  # ranks per pass
    pairs = [dist.new_group([2 * i, 2 * i + 1]) for i in range(n)]
    passes = [dist.new_group(list(range(role, 2 * n, 2))) for role in (0, 1)]
    everyone = None if 2 * n == world else dist.new_group(list(range(2 * n)))
    if rank >= 2 * n:
        return None
    role = rank % 2
    return GuidanceSplit(role, pairs[rank // 2], ContextParallel(rank // 2, n, passes[role]), everyone)
