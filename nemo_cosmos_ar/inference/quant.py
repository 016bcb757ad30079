"""Weight-only int8 for the batch-1 decode (``cosmos-ar generate --decode-weights int8``; off by default).

A 4B decode step at batch 1 is memory-bound: the matrix-vector products (``gemv.py``) read the layers' 8 GB of bf16
weights per token, about 77% of the step on an H200. Stored as int8 with one fp32 scale per output row the same
products read half the bytes. The quantization is symmetric, per output row (channel) of each projection::

    scale[n] = max_k |W[n, k]| / 127          (fp32; an all-zero row gets scale 1, so q = 0 and no division by 0)
    q[n, k]  = clamp(round(W[n, k] / scale[n]), -127, 127)      int8

and ``gemv(x, q, scale=scale)`` computes ``(q x) * scale`` row by row. This changes the model's numbers (each weight
moves by up to ``scale / 2``), which is why it is opt-in.

Memory: the int8 copy is kept *beside* the bf16 weight (about +4 GB for the 4B: half of its 8 GB of projection
weights), and the bf16 weight is overwritten with the dequantized values ``q * scale``. Only the batch-1 decode
step reads the int8 copy; the prefill, batched decode steps and teacher-forced forwards multiply ``module.weight``
with cuBLAS. With the dequantized values there they compute the very model the int8 decode computes, so a prompt's
prefill, its decode and a teacher-forced check agree up to rounding, and no second (int8 GEMM) path is needed.

The projections are those the batch-1 step multiplies with ``gemv``: each layer's ``linear_qkv``, ``linear_proj``,
``linear_fc1`` and ``linear_fc2`` and the output layer. Under tensor parallelism each rank quantizes its own shard:
a row-parallel module (``linear_proj``, ``linear_fc2``) has a scale per output row *of its column shard*, so the
quantized model depends slightly on the TP size. The int8 tensor and the scale are plain attributes of the module
(``weight_int8``, ``weight_scale``), not buffers: a checkpoint saved from the model holds what it always held.
"""

from __future__ import annotations

import torch

QMAX = 127  # symmetric: -128 is never produced, so negating a row stays in range


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q int8 [N, K], scale fp32 [N])`` of a 2-D weight, per output row (see the module's formula)."""
    if weight.dim() != 2:
        raise ValueError(f"quantize_rows: a weight of [N, K] is needed, got {tuple(weight.shape)}")
    w = weight.detach().float()
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / QMAX, torch.ones_like(amax))  # an all-zero row: any scale; q is 0
    q = torch.round(w / scale[:, None]).clamp_(-QMAX, QMAX).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def dequantize(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``q * scale`` per row, computed in fp32 and rounded once to ``dtype``."""
    return (q.float() * scale[:, None]).to(dtype)


def decode_projections(model) -> list[tuple[str, torch.nn.Module]]:
    """``(name, module)`` of every projection the batch-1 decode step multiplies with ``gemv``, in step order; names
    as in ``model.named_modules()``."""
    out = []
    for i, layer in enumerate(model.decoder.layers):
        attn, mlp = layer.self_attention, layer.mlp
        for name, module in (
            ("self_attention.linear_qkv", attn.linear_qkv),
            ("self_attention.linear_proj", attn.linear_proj),
            ("mlp.linear_fc1", mlp.linear_fc1),
            ("mlp.linear_fc2", mlp.linear_fc2),
        ):
            out.append((f"decoder.layers.{i}.{name}", module))
    out.append(("output_layer", model.output_layer))
    return out


def is_quantized(model) -> bool:
    """Whether ``quantize_model`` ran on ``model``."""
    return getattr(model.output_layer, "weight_int8", None) is not None


@torch.no_grad()
def quantize_model(model) -> int:
    """Quantize ``model``'s decode projections in place (this TP rank's shards): each module gets ``weight_int8``
    and ``weight_scale`` and its weight becomes the dequantized values. Idempotent (a second call changes nothing:
    quantizing the dequantized values again would round them once more). Returns the bytes the int8 copies add."""
    if is_quantized(model):
        return 0
    added = 0
    for _, module in decode_projections(model):
        q, scale = quantize_rows(module.weight)
        module.weight.copy_(dequantize(q, scale, module.weight.dtype))
        module.weight_int8, module.weight_scale = q, scale
        added += q.numel() + 4 * scale.numel()
    return added


def int8_weight(module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What ``gemv`` multiplies for ``module``: ``(weight_int8, weight_scale)`` once quantized, else
    ``(weight, None)``."""
    q = getattr(module, "weight_int8", None)
    return (module.weight, None) if q is None else (q, module.weight_scale)


def interleave_glu(q: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An fc1 weight ``[gate; up]`` (``[2F, K]``, the layout Megatron's SwiGLU ``chunk`` splits) with its rows
    interleaved, ``[gate 0, up 0, gate 1, up 1, ...]``, and its per-row scales the same way: the layout whose
    row pairs ``gemv_cuda.gemv_int8(..., glu=True)`` turns into ``silu(gate) * up``."""
    n = q.shape[0]
    if n % 2 or scale.shape != (n,):
        raise ValueError(
            f"interleave_glu: needs [2F, K] rows and 2F scales, got {tuple(q.shape)}, {tuple(scale.shape)}"
        )
    order = torch.arange(n, device=q.device).view(2, n // 2).t().reshape(n)  # gate j at 2j, up j at 2j + 1
    return q.index_select(0, order).contiguous(), scale.index_select(0, order).contiguous()
