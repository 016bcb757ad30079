"""Megatron-Core layer specs for the Cosmos AR transformer (Megatron-Core only, no NeMo).

* With TransformerEngine importable on a CUDA machine: Megatron's TE spec (fused LN+linear, TE attention).
* Otherwise: Megatron's local spec with the core attention swapped for ``SDPACoreAttention``, which calls
  ``torch.nn.functional.scaled_dot_product_attention``. Megatron's own local ``DotProductAttention`` materialises
  the S x S score matrix (12,800 tokens -> ~10 GB per layer in bf16); SDPA runs the flash / cuDNN kernels on GPU
  and a memory-efficient path on CPU.

``COSMOS_AR_SPEC=local|te`` forces a choice (e.g. to compare the two on a GPU).
"""

from __future__ import annotations

import copy
import importlib.util
import math
import os

import torch
import torch.nn.functional as F
from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
from megatron.core.transformer.enums import AttnMaskType
from megatron.core.transformer.module import MegatronModule
from megatron.core.transformer.spec_utils import ModuleSpec

from nemo_cosmos_ar.model.sdpa import preferred_sdpa_backends


class SDPACoreAttention(MegatronModule):
    """Core attention with the ``DotProductAttention`` interface, computed by torch SDPA.

    query ``[sq, b, np, hn]``, key/value ``[sk, b, ng, hn]`` (this TP rank's heads) -> ``[sq, b, np*hn]``.
    GQA: q-head j uses KV head j // (np/ng), the grouping of Megatron's fused QKV layout and of Cosmos.
    """

    def __init__(
        self,
        config,
        layer_number: int,
        attn_mask_type: AttnMaskType,
        attention_type: str = "self",
        attention_dropout: float | None = None,
        softmax_scale: float | None = None,
        **_: object,
    ) -> None:
        super().__init__(config=config)
        self.attn_mask_type = attn_mask_type
        self.dropout_p = config.attention_dropout if attention_dropout is None else attention_dropout
        hn = config.kv_channels
        self.softmax_scale = softmax_scale or config.softmax_scale or 1.0 / math.sqrt(hn)
        if config.context_parallel_size > 1:
            raise ValueError("context parallelism needs the TransformerEngine layer spec (COSMOS_AR_SPEC=te)")

    def forward(
        self, query, key, value, attention_mask, attn_mask_type=None, attention_bias=None, packed_seq_params=None
    ):
        if packed_seq_params is not None or attention_bias is not None:
            raise NotImplementedError("SDPACoreAttention supports neither packed sequences nor attention bias")
        sq, b, np_, hn = query.shape
        sk, ng = key.shape[0], key.shape[2]
        if ng != np_ and not _NATIVE_GQA:
            key = key.repeat_interleave(np_ // ng, dim=2)
            value = value.repeat_interleave(np_ // ng, dim=2)
        kwargs: dict = {}
        if ng != np_ and _NATIVE_GQA:
            kwargs["enable_gqa"] = True  # the kernel reads each KV head for its group: no repeated copies
        q, k, v = (x.permute(1, 2, 0, 3) for x in (query, key, value))  # [b, heads, s, hn]
        mask_type = attn_mask_type or self.attn_mask_type
        if mask_type == AttnMaskType.causal:
            if sq == sk:
                kwargs["is_causal"] = True
            elif sq > 1:  # decoding with a KV cache: query i sits at absolute position sk - sq + i
                kwargs["attn_mask"] = torch.ones(sq, sk, dtype=torch.bool, device=q.device).tril(sk - sq)
        elif attention_mask is not None:
            kwargs["attn_mask"] = ~attention_mask  # Megatron: True = masked out; SDPA: True = attend
        with preferred_sdpa_backends(q.device):
            out = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout_p if self.training else 0.0, scale=self.softmax_scale, **kwargs
            )
        return out.permute(2, 0, 1, 3).reshape(sq, b, np_ * hn)


# COSMOS_AR_SDPA_GQA=1: let SDPA group the heads itself (``enable_gqa``) instead of repeating K/V (benchmarks).
_NATIVE_GQA = os.environ.get("COSMOS_AR_SDPA_GQA") == "1"


def te_available() -> bool:
    return torch.cuda.is_available() and importlib.util.find_spec("transformer_engine") is not None


def resolve_spec_name(name: str | None = None) -> str:
    """'te' or 'local': explicit argument, else ``COSMOS_AR_SPEC``, else TE when it can run."""
    name = name or os.environ.get("COSMOS_AR_SPEC") or ("te" if te_available() else "local")
    if name not in ("te", "local"):
        raise ValueError(f"unknown layer spec {name!r}; use 'te' or 'local'")
    if name == "te" and not te_available():
        raise RuntimeError("the TE layer spec needs TransformerEngine and a CUDA GPU; use COSMOS_AR_SPEC=local")
    return name


def cosmos_layer_spec(name: str | None = None) -> ModuleSpec:
    """The transformer-layer ``ModuleSpec``: self-attention with QK RMSNorm, SwiGLU MLP, RMSNorm pre-norms."""
    if resolve_spec_name(name) == "te":
        from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_with_transformer_engine_spec

        return get_gpt_layer_with_transformer_engine_spec(qk_layernorm=True)
    spec = copy.deepcopy(get_gpt_layer_local_spec(qk_layernorm=True, normalization="RMSNorm"))
    spec.submodules.self_attention.submodules.core_attention = SDPACoreAttention
    return spec
