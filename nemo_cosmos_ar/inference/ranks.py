"""Rank-to-rank steps of ``cosmos-ar generate`` under torchrun: rank 0's prompt or error on every rank, errors from
any rank, and a check that tensor-parallel ranks sampled the same tokens. One process: no communication."""

from __future__ import annotations

import torch


def broadcast(obj, rank: int, world: int):
    """``obj`` from rank 0 on every rank (one process: ``obj``). Errors travel too, so no rank waits forever."""
    if world == 1:
        return obj
    import torch.distributed as dist

    box = [obj if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def share(payload, rank: int, world: int, error: BaseException | None = None):
    """``broadcast`` for steps where other ranks can fail too: rank 0's ``payload`` on every rank, unless it is an
    exception or another rank passes ``error``; then the first such exception (one all-gather)."""
    if world == 1:
        return payload if error is None else error
    import torch.distributed as dist

    got: list = [None] * world
    dist.all_gather_object(got, payload if rank == 0 else error)
    return next((e for e in got if isinstance(e, BaseException)), got[0])


def check_ranks_agree(seq: torch.Tensor) -> None:
    """Every TP rank samples from the same gathered logits with the same seed; check they agree (one all-reduce)."""
    import torch.distributed as dist

    weights = torch.arange(1, seq.numel() + 1, device=seq.device).view_as(seq)
    h = torch.stack([(seq * weights).sum(), -(seq * weights).sum()])
    dist.all_reduce(h, op=dist.ReduceOp.MAX)
    if int(h[0]) != -int(h[1]):
        raise RuntimeError("tensor-parallel ranks generated different tokens; please report this with the command")
