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

``--decode-weights int4`` (also opt-in, and coarser): the layers' four projections become 4-bit with one fp32 scale
per group of ``GROUP`` (128) columns of a row, symmetric::

    scale[n, g] = max_{k in group g} |W[n, k]| / 7
    q[n, k]     = clamp(round(W[n, k] / scale[n, g]), -7, 7)

stored as the nibbles ``q + 8`` (1..15), eight columns per int32 word, column ``8 c + j`` in bits ``4 j .. 4 j + 3``
of word ``c`` (``weight_int4`` [N, K / 8], ``weight_scale`` [N, K / group]). A quarter of bf16's bytes: the batch-1
step is bandwidth-bound, so its products take about half the int8 time. Per-row scales are too coarse at 4 bits (one
large weight would flatten its whole row), hence the groups. The output layer stays int8 per row: it is 7% of the
step's bytes and its logits are what is sampled. As for int8, the bf16 weights become the dequantized values.
"""

from __future__ import annotations

import torch

QMAX = 127  # symmetric: -128 is never produced, so negating a row stays in range
QMAX4 = 7  # int4, symmetric likewise (-8 unused)
GROUP = 128  # int4 columns per scale
WEIGHT_KINDS = ("bf16", "int8", "int4")


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


def int4_group(k: int) -> int:
    """Columns per int4 scale for rows of ``k``: ``GROUP`` when it divides ``k``, else the largest of 64, 32, 16, 8
    that does (the tiny test models' rows); a whole number of int32 words either way."""
    for g in (GROUP, 64, 32, 16, 8):
        if k % g == 0:
            return g
    raise ValueError(f"int4 weights need rows of a multiple of 8 columns (int32 words of 8 nibbles), got {k}")


def quantize_groups_int4(weight: torch.Tensor, group: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(words int32 [N, K / 8], scale fp32 [N, K / group])`` of a 2-D weight (see the module's formula);
    ``group`` defaults to ``int4_group(K)``."""
    if weight.dim() != 2:
        raise ValueError(f"quantize_groups_int4: a weight of [N, K] is needed, got {tuple(weight.shape)}")
    n, k = weight.shape
    g = group or int4_group(k)
    if k % g or g % 8:
        raise ValueError(f"quantize_groups_int4: a group of {g} columns must be a multiple of 8 dividing K = {k}")
    w = weight.detach().float().view(n, k // g, g)
    amax = w.abs().amax(dim=2)
    scale = torch.where(amax > 0, amax / QMAX4, torch.ones_like(amax))
    q = torch.round(w / scale[..., None]).clamp_(-QMAX4, QMAX4).view(n, k)
    return pack_int4(q), scale.contiguous()


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Values in [-8, 7] ``[N, K]`` (K a multiple of 8) as int32 words of their nibbles ``q + 8``."""
    n, k = q.shape
    nib = (q.to(torch.int64) + 8).view(n, k // 8, 8)
    word = (nib << (4 * torch.arange(8, device=q.device))).sum(dim=2)
    return torch.where(word >= 2**31, word - 2**32, word).to(torch.int32).contiguous()  # two's complement


def unpack_int4(words: torch.Tensor) -> torch.Tensor:
    """``pack_int4``'s inverse: int8 values in [-8, 7] of ``[N, 8 * words]``."""
    n, kw = words.shape
    nib = ((words.to(torch.int64) & 0xFFFFFFFF)[..., None] >> (4 * torch.arange(8, device=words.device))) & 0xF
    return (nib - 8).to(torch.int8).view(n, 8 * kw)


def dequantize_int4(words: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``q * scale`` per group, computed in fp32 and rounded once to ``dtype``."""
    q = unpack_int4(words).float()
    n, k = q.shape
    return (q.view(n, scale.shape[1], -1) * scale[..., None]).view(n, k).to(dtype)


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


def quantized_kind(model) -> str:
    """``"bf16"`` before ``quantize_model``, else the kind it was given (``"int8"`` or ``"int4"``)."""
    if getattr(model.output_layer, "weight_int8", None) is None:
        return "bf16"
    return "int4" if getattr(model.decoder.layers[0].mlp.linear_fc1, "weight_int4", None) is not None else "int8"


def is_quantized(model) -> bool:
    """Whether ``quantize_model`` ran on ``model``."""
    return quantized_kind(model) != "bf16"


@torch.no_grad()
def quantize_model(model, kind: str = "int8") -> int:
    """Quantize ``model``'s decode projections in place (this TP rank's shards). ``int8``: each module gets
    ``weight_int8`` and ``weight_scale``; ``int4``: the layers' modules get ``weight_int4`` and group scales, the
    output layer int8. The weights become the dequantized values. Idempotent for one kind (a second call changes
    nothing: quantizing the dequantized values again would round them once more); another kind is refused. Returns
    the bytes the quantized copies add."""
    if kind not in ("int8", "int4"):
        raise ValueError(f"quantize_model: kind must be int8 or int4, got {kind!r}")
    done = quantized_kind(model)
    if done == kind:
        return 0
    if done != "bf16":
        raise ValueError(f"the model's weights were already quantized to {done}; load the model again for {kind}")
    added = 0
    for name, module in decode_projections(model):
        if kind == "int4" and name != "output_layer":
            q, scale = quantize_groups_int4(module.weight)
            module.weight.copy_(dequantize_int4(q, scale, module.weight.dtype))
            module.weight_int4, module.weight_scale = q, scale
        else:
            q, scale = quantize_rows(module.weight)
            module.weight.copy_(dequantize(q, scale, module.weight.dtype))
            module.weight_int8, module.weight_scale = q, scale
        added += q.numel() * q.element_size() + 4 * scale.numel()
    return added


def decode_weight(module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What ``gemv`` multiplies for ``module``: ``(weight_int4, group scales)`` or ``(weight_int8, row scales)``
    once quantized, else ``(weight, None)``."""
    for attr in ("weight_int4", "weight_int8"):
        q = getattr(module, attr, None)
        if q is not None:
            return q, module.weight_scale
    return module.weight, None
