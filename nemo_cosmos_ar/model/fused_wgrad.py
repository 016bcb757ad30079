"""Gradient-accumulation fusion without apex or TransformerEngine (Megatron-Core only, no NeMo).

With ``gradient_accumulation_fusion=True`` Megatron's linear layers add each weight gradient straight into the
DDP buffer (``weight.main_grad``) with one GEMM, instead of writing the gradient to a new tensor that a hook then
adds to the buffer (one more write and two more reads of every weight-sized tensor per step). The GEMM comes from
apex's ``fused_weight_gradient_mlp_cuda`` extension, which is not on the H200 image. ``install()`` gives Megatron a
stand-in with the same two functions built on ``torch.addmm(..., out=main_grad)``: cuBLAS then accumulates into
the buffer itself (beta = 1). For one micro-batch into a zeroed bf16 buffer the result is bit-identical to the
unfused path (both round the fp32-accumulated product to bf16 once).
"""

from __future__ import annotations

import torch


class TorchWgradAccum:
    """The two entry points Megatron-Core calls: ``main_grad += grad_output^T @ input`` (2-D operands)."""

    @staticmethod
    def wgrad_gemm_accum_fp16(total_input: torch.Tensor, grad_output: torch.Tensor, main_grad: torch.Tensor) -> None:
        # bf16/fp16 buffer: one GEMM with the buffer as C (beta = 1) and as the output
        torch.addmm(main_grad, grad_output.t(), total_input, out=main_grad)

    @staticmethod
    def wgrad_gemm_accum_fp32(total_input: torch.Tensor, grad_output: torch.Tensor, main_grad: torch.Tensor) -> None:
        # fp32 buffer with bf16 operands: torch has no mixed-dtype addmm, so this is the unfused sum (correct,
        # not faster); bf16-mixed runs keep gradient_accumulation_fusion off.
        main_grad.add_(grad_output.t().mm(total_input).to(main_grad.dtype))


def install() -> bool:
    """Make Megatron's linear layers accept ``gradient_accumulation_fusion=True``; False if apex already does."""
    from megatron.core.tensor_parallel import layers

    if layers._grad_accum_fusion_available and not isinstance(
        getattr(layers, "fused_weight_gradient_mlp_cuda", None), type
    ):
        return False  # the real extension is importable
    layers.fused_weight_gradient_mlp_cuda = TorchWgradAccum
    layers._grad_accum_fusion_available = True
    return True
