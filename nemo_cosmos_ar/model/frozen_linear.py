"""The input gradient of Megatron's frozen-weight linear as one 2-D GEMM (Megatron-Core only, no NeMo).

Megatron runs a linear whose weight has ``requires_grad=False`` (every base linear under LoRA, the output layer
included) through ``LinearWithFrozenWeight``, whose backward is ``grad_output.matmul(weight)``. ``torch.matmul``
folds a 3-D ``[s, b, v]`` operand into one ``[s·b, v]`` GEMM only when it can do so without a copy or when the 2-D
operand requires grad. The output layer's gradient is neither: GPTModel hands the loss ``logits.transpose(0, 1)``,
so the gradient arrives as the transpose of a contiguous ``[b, s, v]`` tensor (strides ``[v, s·v, 1]``), and the
weight is frozen. matmul then expands the weight to ``[s, v, h]`` and runs a bmm of ``s`` one-row products that
read the whole 64,000 x 4,096 weight once per token: 509 ms of a 698 ms 4B LoRA step on an H200 (issue 16). A
trainable weight takes the folded path (matmul copies the gradient), which is why full post-training never shows it.

``install()`` swaps in a subclass whose backward folds the leading dimensions itself: a view when the layout
allows one (batch 1 always; any contiguous gradient), else the ``[b, s]`` order of the transposed logits (a view
too), else a copy. The GEMM is the same ``[rows, v] @ [v, h]`` a trainable output layer runs.
"""

from __future__ import annotations

import torch
from megatron.core.tensor_parallel import layers


def _as_rows(t: torch.Tensor) -> torch.Tensor | None:
    """``t`` as a 2-D view ``[rows, last]``, or None if that needs a copy."""
    try:
        return t.view(-1, t.shape[-1])
    except RuntimeError:
        return None


def frozen_dgrad(grad_output: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``grad_output @ weight`` for ``grad_output [..., out]`` and ``weight [out, in]`` as one 2-D GEMM."""
    rows = _as_rows(grad_output)
    if rows is not None:
        return rows.mm(weight).view(*grad_output.shape[:-1], weight.shape[1])
    if grad_output.dim() == 3:  # [s, b, out] transposed from a contiguous [b, s, out]: fold in that order
        swapped = grad_output.transpose(0, 1)
        rows = _as_rows(swapped)
        if rows is not None:
            return rows.mm(weight).view(*swapped.shape[:-1], weight.shape[1]).transpose(0, 1)
    return grad_output.reshape(-1, grad_output.shape[-1]).mm(weight).view(*grad_output.shape[:-1], weight.shape[1])


class FoldedLinearWithFrozenWeight(layers.LinearWithFrozenWeight):
    """Megatron's ``LinearWithFrozenWeight`` (same forward) with the input gradient as one 2-D GEMM."""

    @staticmethod
    @layers.custom_bwd
    def backward(ctx, grad_output):
        (weight,) = ctx.saved_tensors
        grad_input = frozen_dgrad(grad_output, weight)
        if ctx.allreduce_dgrad:  # as Megatron's: the TP all-reduce of the input gradient
            torch.distributed.all_reduce(grad_input, group=ctx.tp_group)
        return grad_input, None, None, None, None


def install() -> bool:
    """Make Megatron's frozen-weight linears use the folded backward; False if already installed."""
    if layers.LinearWithFrozenWeight is FoldedLinearWithFrozenWeight:
        return False
    # linear_with_frozen_weight looks the class up in its module at every call
    layers.LinearWithFrozenWeight = FoldedLinearWithFrozenWeight
    return True
