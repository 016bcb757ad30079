"""The training loss of cosmos-predict1's AR post-training, tensor-parallel aware (Megatron-Core only).

``loss = CE(mean over unmasked targets) + z_coeff · mean(logsumexp(logits)²)`` where the z-loss mean runs over
*all* positions, masked ones included, exactly as cosmos-predict1 computes it. The mask drops the targets inside
the first latent frame: a clip of T'·H'·W' tokens is fed as ``tokens[:-1]`` with labels ``tokens[1:]``, and the
first H'·W'−1 label positions (the rest of frame 0, which the model cannot predict from a real context) carry no
loss, leaving (T'−1)·H'·W' targets (3,840 for 5×24×40).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

Z_LOSS_COEFF = 1e-4


def first_frame_loss_mask(latent_shape: tuple[int, int, int], num_condition_frames: int = 1) -> Tensor:
    """float ``[T·H·W − 1]`` mask over label positions: 0 for the first ``frames·H·W − 1``, 1 after."""
    t, h, w = latent_shape
    mask = torch.ones(t * h * w - 1)
    mask[: num_condition_frames * h * w - 1] = 0.0
    return mask


def split_clip(clip_tokens: Tensor) -> tuple[Tensor, Tensor]:
    """``[..., L]`` clip tokens -> model input ``[..., L-1]`` and labels ``[..., L-1]``."""
    return clip_tokens[..., :-1], clip_tokens[..., 1:]


@dataclass
class TokenTerms:
    """Per-position terms, each ``[B, S]`` fp32: cross-entropy, logsumexp and whether the target is the argmax."""

    ce: Tensor
    lse: Tensor
    correct: Tensor


def token_terms(logits: Tensor, labels: Tensor, vocab_parallel: bool = True) -> TokenTerms:
    """Cross-entropy, logsumexp and top-1 hit per position.

    ``logits`` are this TP rank's vocab shard ``[B, S, V/tp]`` (Megatron's ``parallel_output``); pass
    ``vocab_parallel=False`` for full-vocabulary logits.
    """
    x = logits.float()
    tp, rank, group = _tp() if vocab_parallel else (1, 0, None)
    m = x.max(dim=-1).values.detach()
    if tp > 1:
        torch.distributed.all_reduce(m, op=torch.distributed.ReduceOp.MAX, group=group)
    sum_exp = (x - m.unsqueeze(-1)).exp().sum(dim=-1)
    v_local = x.shape[-1]
    local = labels - rank * v_local
    in_range = (local >= 0) & (local < v_local)
    target = x.gather(-1, local.clamp(0, v_local - 1).unsqueeze(-1)).squeeze(-1) * in_range
    if tp > 1:
        from megatron.core.tensor_parallel.mappings import reduce_from_tensor_model_parallel_region

        sum_exp = reduce_from_tensor_model_parallel_region(sum_exp)
        target = reduce_from_tensor_model_parallel_region(target)
    lse = m + sum_exp.log()
    return TokenTerms(ce=lse - target, lse=lse, correct=(target.detach() >= m).float())


def cosmos_ar_loss(logits: Tensor, labels: Tensor, loss_mask: Tensor, z_loss_coeff: float = Z_LOSS_COEFF,
                   vocab_parallel: bool = True):  # fmt: skip
    """Scalar loss and a dict of detached metrics (ce, z_loss, accuracy over unmasked targets)."""
    terms = token_terms(logits, labels, vocab_parallel)
    mask = loss_mask.float().expand_as(terms.ce)
    n = mask.sum().clamp(min=1.0)
    ce = (terms.ce * mask).sum() / n
    z = terms.lse.pow(2).mean()
    loss = ce + z_loss_coeff * z
    metrics = {"ce": ce.detach(), "z_loss": z.detach(), "accuracy": ((terms.correct * mask).sum() / n).detach()}
    return loss, metrics


def _tp() -> tuple[int, int, object]:
    try:
        from megatron.core import parallel_state

        if parallel_state.model_parallel_is_initialized():
            return (
                parallel_state.get_tensor_model_parallel_world_size(),
                parallel_state.get_tensor_model_parallel_rank(),
                parallel_state.get_tensor_model_parallel_group(),
            )
    except ImportError:
        pass
    return 1, 0, None
