"""The DiT's GELU and gated residuals computed by the cuBLAS products that produce their inputs (``epilogues="auto"``).

Why: on the H200 the bf16 DiT runs at the GPU's power limit (700 W, SM clock ~1,575 MHz; BENCHMARKS.md, issue 13,
twenty-ninth session), so what pays is work removed, not kernels that are faster in a short burst. After the GEMMs
and the attention, the largest passes of a guided step are over GEMM outputs: the MLP's GELU over the
``[40,960, 16,384]`` activation (1.09 ms a block alone) and the three ``x + gate * y`` after the attention outputs
and the MLP (each reads x and y and writes the sum: ~1 GB at the guided step). Two cuBLAS features remove them:

* ``linear_gelu``: ``torch._addmm_activation(..., use_gelu=True)``, cuBLASLt's GELU epilogue, applied to the fp32
  accumulator. cuBLASLt's GELU is the tanh approximation, at most 4.7e-4 from the exact GELU (at x = 2.7, where a
  bf16 step is 1.6e-2); on the CPU torch applies the exact GELU.
* ``linear_gate_residual``: ``gate * (y_in @ W.T) = y_in @ (gate[:, None] * W).T``, so the gate is folded into a
  per-call copy of the weight (0.06 ms for the MLP's 4,096 x 16,384, against the pass it removes) and the residual
  is the GEMM's C operand with beta = 1: ``x.addmm_(y_in, (gate W).T)`` writes the sum into x's storage. This needs
  one gate for every batch row, which holds in the guided step (both passes share the noise level: the network
  computes the modulation once, ``network.DiffusionDecoderDiT.forward``), and an x that nobody else reads, which
  holds inside the block stack (each sub-block's input is the previous one's fresh output).

What differs from the separate passes: one bf16 rounding fewer on the way (the GEMM output before the GELU, ``gate *
y`` before the sum), the gated weight rounded to bf16, and the tanh GELU; the GPU tier (tests/test_gpu.py) checks a
two-block forward at the 7B widths is as close to fp32 as the separate passes. The products are cuBLAS's own.

Where the tensors are not bf16 CUDA ones, autograd is on, x is not contiguous or the gates differ by row, the callers
run the separate ops (``fused.py``). No NeMo import.
"""

from __future__ import annotations

import torch
from torch import nn

from nemo_cosmos_ar.diffusion_decoder import fused

EPILOGUES = ("auto", "off")
_ZERO_BIAS: dict = {}  # (n, device, dtype) -> zeros [n]: _addmm_activation's GELU epilogue takes a bias


def usable(x: torch.Tensor, weight: torch.Tensor, mode: str) -> bool:
    """Whether ``x @ weight.T`` runs with its epilogue: ``mode`` "auto", bf16 CUDA tensors, no autograd."""
    if mode == "off":
        return False
    if mode != "auto":
        raise ValueError(f"unknown DiT epilogues {mode!r}; choose one of {EPILOGUES}")
    return x.is_cuda and x.dtype == torch.bfloat16 and weight.dtype == torch.bfloat16 and not torch.is_grad_enabled()


def _zero_bias(n: int, like: torch.Tensor) -> torch.Tensor:
    key = (n, like.device, like.dtype)
    if key not in _ZERO_BIAS:
        _ZERO_BIAS[key] = torch.zeros(n, device=like.device, dtype=like.dtype)
    return _ZERO_BIAS[key]


def linear_gelu(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``gelu(x @ weight.T)`` for ``x [..., K]``, ``weight [N, K]``, the GELU applied by the product (tanh
    approximation on cuBLASLt, exact on the CPU)."""
    n = weight.shape[0]
    a = x.reshape(-1, x.shape[-1])
    out = torch._addmm_activation(_zero_bias(n, x), a, weight.t(), use_gelu=True)
    return out.view(*x.shape[:-1], n)


def shared_gate(gate: torch.Tensor) -> torch.Tensor | None:
    """The one ``[N]`` gate of ``gate [B, 1, N]`` when every row is the same tensor row (one row, or a batch stride
    of 0, as ``SubBlock`` makes them for a shared noise level); else None."""
    if gate.dim() != 3 or gate.shape[1] != 1 or (gate.shape[0] > 1 and gate.stride(0) != 0):
        return None
    return gate[0, 0]


def linear_gate_residual(
    y_in: torch.Tensor, weight: torch.Tensor, x: torch.Tensor, gate: torch.Tensor
) -> torch.Tensor | None:
    """``x + gate * (y_in @ weight.T)`` for ``y_in [B, S, K]``, ``x [B, S, N]``, ``gate [B, 1, N]``, written into
    x's storage and returned (x is consumed); None, with x untouched, where one GEMM cannot do it (the caller runs
    the separate ops): rows with different gates, or x or y_in not contiguous."""
    g = shared_gate(gate)
    if g is None or not x.is_contiguous() or not y_in.is_contiguous():
        return None
    n, k = weight.shape
    gated = weight * g.to(weight.dtype).view(n, 1)  # [N, K]: output channel i scaled by gate i
    x.view(-1, n).addmm_(y_in.view(-1, k), gated.t())
    return x


def gated_projection(
    y_in: torch.Tensor, proj: nn.Linear, x: torch.Tensor, gate: torch.Tensor, mode: str, kernels: str
) -> torch.Tensor:
    """``x + gate * proj(y_in)`` (x may be consumed): one product where ``usable`` and ``linear_gate_residual`` take
    it, else the projection and ``fused.gate_residual`` (``kernels``)."""
    if usable(y_in, proj.weight, mode):
        out = linear_gate_residual(y_in, proj.weight, x, gate)
        if out is not None:
            return out
    return fused.gate_residual(x, proj(y_in), gate, kernels)
