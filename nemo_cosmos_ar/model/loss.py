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

from nemo_cosmos_ar.tokenizer import grid

Z_LOSS_COEFF = 1e-4


def first_frame_loss_mask(latent_shape: tuple[int, int, int], num_condition_frames: int = 1) -> Tensor:
    """float ``[T·H·W − 1]`` mask over label positions: 0 for the first ``frames·H·W − 1``, 1 after."""
    mask = torch.ones(grid.tokens_per_clip(latent_shape) - 1)
    mask[: num_condition_frames * grid.tokens_per_frame(latent_shape) - 1] = 0.0
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


def token_terms(logits: Tensor, labels: Tensor, vocab_parallel: bool = True, chunk_rows: int = 0) -> TokenTerms:
    """Cross-entropy, logsumexp and top-1 hit per position, without materialising fp32 logits.

    ``logits`` are this TP rank's vocab shard ``[B, S, V/tp]`` (Megatron's ``parallel_output``); pass
    ``vocab_parallel=False`` for full-vocabulary logits. Works through ``_ChunkedTokenTerms``: rows are upcast to
    fp32 a chunk at a time (``chunk_rows``; 0 = about 256 MB of fp32 per chunk) in the forward and again in the
    backward, so autograd keeps only the logits themselves and the fp32 logsumexp per row. The naive version
    (``token_terms_reference``) kept several full fp32 copies of the 64,000-way logits alive for the backward.
    """
    tp, rank, group = _tp() if vocab_parallel else (1, 0, None)
    rows = chunk_rows or max(1, (1 << 26) // max(1, logits.shape[-1]))
    ce, lse, correct = _ChunkedTokenTerms.apply(logits, labels, rows, tp, rank, group)
    return TokenTerms(ce=ce, lse=lse, correct=correct)


class _ChunkedTokenTerms(torch.autograd.Function):
    """``(ce, lse, correct)`` per row of vocab-parallel logits; the backward recomputes softmax chunk by chunk.

    d lse / d x = softmax(x) and d ce / d x = softmax(x) - onehot(label), so the gradient of any loss built from
    ce and lse is ``softmax(x) · (g_ce + g_lse) - onehot · g_ce``: one fp32 chunk at a time, written in the
    logits' dtype (what autograd of ``x.float()`` would hand back too).
    """

    @staticmethod
    def forward(ctx, logits, labels, chunk_rows, tp, rank, group):
        v_local = logits.shape[-1]
        x = logits.reshape(-1, v_local)
        local = labels.reshape(-1) - rank * v_local
        in_range = (local >= 0) & (local < v_local)
        local = local.clamp(0, v_local - 1)
        m = x.amax(dim=-1).float()  # max in the logits' dtype is exact; no fp32 copy needed for it
        if tp > 1:
            torch.distributed.all_reduce(m, op=torch.distributed.ReduceOp.MAX, group=group)
        sums = torch.empty(2, x.shape[0], dtype=torch.float32, device=x.device)  # [sum exp, target logit]
        for r0 in range(0, x.shape[0], chunk_rows):
            # ``-`` (not ``sub_``) makes the fp32 copy: ``.float()`` of fp32 logits would be the logits themselves
            shifted = x[r0 : r0 + chunk_rows].float() - m[r0 : r0 + chunk_rows, None]
            sums[0, r0 : r0 + chunk_rows] = shifted.exp_().sum(dim=-1)
        sums[1] = x.gather(1, local[:, None]).squeeze(1).float() * in_range
        if tp > 1:  # one collective for both sums
            torch.distributed.all_reduce(sums, group=group)
        lse = m + sums[0].log()
        target = sums[1]
        ctx.save_for_backward(logits, local, in_range, lse)
        ctx.chunk_rows = chunk_rows
        correct = (target >= m).float()
        ctx.mark_non_differentiable(correct)
        shape = logits.shape[:-1]
        return (lse - target).view(shape), lse.view(shape), correct.view(shape)

    @staticmethod
    def backward(ctx, g_ce, g_lse, _g_correct):
        logits, local, in_range, lse = ctx.saved_tensors
        v_local = logits.shape[-1]
        x = logits.reshape(-1, v_local)
        n = x.shape[0]
        g_ce = torch.zeros(n, device=x.device) if g_ce is None else g_ce.reshape(-1).float()
        g_lse = torch.zeros(n, device=x.device) if g_lse is None else g_lse.reshape(-1).float()
        coef = g_ce + g_lse
        onehot = torch.where(in_range, g_ce, torch.zeros_like(g_ce))
        grad = torch.empty_like(x)
        step = ctx.chunk_rows
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            p = (x[r0:r1].float() - lse[r0:r1, None]).exp_().mul_(coef[r0:r1, None])
            p.scatter_add_(1, local[r0:r1, None], -onehot[r0:r1, None])
            grad[r0:r1] = p
        return grad.view(logits.shape), None, None, None, None, None


def token_terms_reference(logits: Tensor, labels: Tensor, vocab_parallel: bool = True) -> TokenTerms:
    """The straightforward autograd version of ``token_terms`` (fp32 copies of the logits): the test yardstick."""
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


def cosmos_ar_loss(
    logits: Tensor, labels: Tensor, loss_mask: Tensor, z_loss_coeff: float = Z_LOSS_COEFF, vocab_parallel: bool = True
):
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
