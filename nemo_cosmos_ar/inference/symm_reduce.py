"""A low-latency all-reduce for the tensor-parallel batch-1 decode step (no NeMo, no Megatron).

Why: at TP > 1 every layer of a decode step all-reduces two rows of ``dim`` values (after the attention's output
projection and after the MLP's), 32 per token for the 4B. At batch 1 these are 8 KB messages: their cost is latency,
not bandwidth, and on two H200s the TP=2 decode ran at only 585 tokens/s against 540 at TP=1 although each rank
reads half the weights (BENCHMARKS.md, issue 13). torch's symmetric memory (``torch.distributed._symmetric_memory``)
gives each rank direct loads from its peers' buffers over NVLink: its one-shot all-reduce is one kernel that waits
at a barrier on the peers' signal pads, sums every rank's copy of the row and waits at a second barrier, so the
buffer can be reused at once. It is captured in the step's CUDA graph like any kernel.

The sum is taken in the row's dtype, rank by rank in rank order; at TP=2 ``a + b`` is exact up to one rounding
either way, so the result equals NCCL's (which also adds the two bf16 rows once). CUDA only; ``available`` says
whether this torch and these GPUs can do it; ``--decode-reduce symm`` where they cannot is a one-line error.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

MODES = ("auto", "nccl", "symm")  # --decode-reduce


def available(device: torch.device, group) -> tuple[bool, str]:
    """``(ok, why not)``: CUDA, more than one rank, and torch's one-shot all-reduce present."""
    if device.type != "cuda":
        return False, f"the model is on {device.type}, and symmetric memory needs CUDA GPUs"
    if group is None or dist.get_world_size(group) < 2:
        return False, "one rank: there is nothing to reduce"
    try:
        import torch.distributed._symmetric_memory  # noqa: F401
    except ImportError as err:
        return False, f"this torch has no symmetric memory ({err})"
    if not hasattr(torch.ops.symm_mem, "one_shot_all_reduce"):
        return False, "this torch has no torch.ops.symm_mem.one_shot_all_reduce"
    return True, ""


class SymmReducer:
    """``reducer(y)`` = the sum of ``y`` over ``group``'s ranks, for rows of at most ``numel`` values of ``dtype``.

    Built by every rank of the group at once (the buffer is exchanged collectively). Not reentrant: one buffer, one
    reduce at a time on the calling stream, which is how a decode step issues them.
    """

    def __init__(self, group, numel: int, dtype: torch.dtype, device: torch.device) -> None:
        import torch.distributed._symmetric_memory as symm_mem

        self.group_name = group.group_name
        if hasattr(symm_mem, "enable_symm_mem_for_group"):  # required before rendezvous by older torch releases
            symm_mem.enable_symm_mem_for_group(self.group_name)
        self.numel, self.dtype = numel, dtype
        self.buffer = symm_mem.empty(numel, dtype=dtype, device=device)
        symm_mem.rendezvous(self.buffer, self.group_name)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        n = y.numel()
        if n > self.numel or y.dtype != self.dtype:
            raise ValueError(
                f"symmetric all-reduce: a {y.dtype} tensor of {n} values does not fit its {self.dtype} buffer of "
                f"{self.numel}"
            )
        buf = self.buffer[:n]
        buf.copy_(y.reshape(n))
        return torch.ops.symm_mem.one_shot_all_reduce(buf, "sum", self.group_name).view(y.shape)


def make_reducer(reduce: str, gemv_step: bool, group, engine) -> SymmReducer | None:
    """The engine's reducer for ``--decode-reduce``: "symm" (an error where unavailable) or "nccl" / "auto"
    (None: the process group's all-reduce). "auto" stays NCCL until the one-shot kernel is measured faster on two
    GPUs (BENCHMARKS.md, issue 13). ``gemv_step``: the step is the batch-1 matrix-vector one, the only path that
    uses a reducer. ``group``: the TP group (None at TP=1). Collective at TP > 1: every rank must call it."""
    if reduce != "symm" or not gemv_step:
        return None
    ok, why = available(engine.device, group)
    if not ok:
        raise ValueError(f"--decode-reduce symm: {why}; use --decode-reduce nccl")
    # rows of up to 8 tokens' hidden states; a larger row takes NCCL (fused_step._reduce)
    return SymmReducer(group, 8 * engine.cfg.dim, engine.dtype, engine.device)
