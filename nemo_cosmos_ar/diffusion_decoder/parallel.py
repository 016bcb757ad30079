"""The diffusion decoder on two GPUs: the two passes of classifier-free guidance on two ranks.

Each of the 15 sampling steps runs the DiT twice on the same noisy latent, once with the conditioning (the tokens and
the generic prompt) and once without (token 0 everywhere, a zero prompt), and combines the two outputs. The passes are
independent, so with two ranks each runs one of them at batch 1 and they swap their outputs (a ``[16, 8, 80, 128]``
latent, 2.6 MB in bf16, per step): the step's DiT time halves and every rank then computes the same Euler update
from the same two tensors, so the state stays identical on both without any other exchange. The outputs equal one
rank's unbatched sampling (``SamplerConfig(batch_guidance=False)``) exactly: the same kernels on the same inputs.

cosmos-predict1 splits its decoder over GPUs by context parallelism instead (the sequence of one pass cut across
ranks, with attention exchanging keys and values every layer); for two GPUs the guidance split needs no change to the
network and one small exchange per step. Only two ranks take part; with more GPUs the others wait.

Role 0 runs the conditional pass and afterwards decodes the latents to frames (the CV8x8x8 decoder lives there
only); role 1 runs the unconditional pass and returns no video.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class GuidanceSplit:
    """This rank's part of a two-rank guidance split.

    Attributes:
        role: 0 = the conditional pass and the frames; 1 = the unconditional pass.
        group: the process group of the two ranks (role 0 is its first rank); None = the default group, which must
            then hold exactly these two ranks.
    """

    role: int
    group: object | None = None

    def __post_init__(self) -> None:
        if self.role not in (0, 1):
            raise ValueError(f"a guidance split has roles 0 (conditional) and 1 (unconditional), got {self.role}")

    def exchange(self, mine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(conditional, unconditional)`` outputs from this rank's ``mine`` and the other rank's."""
        b = mine.shape[0]
        both = torch.empty((2 * b, *mine.shape[1:]), dtype=mine.dtype, device=mine.device)  # role 0's rows first
        dist.all_gather_into_tensor(both, mine.contiguous(), group=self.group)
        return both[:b], both[b:]

    def agree(self, error: BaseException | None, what: str) -> None:
        """Raise on both ranks when ``what`` failed on either (else the other would wait in the next exchange
        forever): this rank's own error as it is, the other rank's as a ``ValueError`` carrying its message."""
        messages: list[str | None] = [None, None]
        dist.all_gather_object(messages, None if error is None else str(error), group=self.group)
        if error is not None:
            raise error
        other = messages[1 - self.role]
        if other is not None:
            raise ValueError(f"{what} failed on the other GPU of the guidance split: {other}")


def split_for_rank(rank: int, world: int, group: object | None = None) -> GuidanceSplit | None:
    """The split of ``rank`` in a run of ``world`` ranks: ranks 0 and 1 share the decoder when there are two or more;
    None for a single process and for ranks 2 and up (they take no part)."""
    if world < 2 or rank > 1:
        return None
    return GuidanceSplit(rank, group)
