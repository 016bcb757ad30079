"""The decode step's layers with the small operations between the GEMMs fused (``McoreEngine.fused_step``).

At batch 1 a 4B decode step reads 8 GB of weights in about 2.0 ms on an H200, and the rest of the step is some 25
small kernels per layer (four RMSNorms, RoPE's slices and products, residual adds, SiLU and the gate product), each a
few microseconds even inside a CUDA graph. Here the same layer runs as:

    h = norm_in(x)                           (fused with the previous layer's residual add)
    q, k, v = split(linear_qkv(h));  q, k = rope(q_norm(q)), rope(k_norm(k))      one fused kernel
    o = attention(q, cache);  y = linear_proj(o)
    x, h = x + y, pre_mlp_norm(x + y)                                             one fused kernel
    y = linear_fc2(silu(gate) * up)  with  gate, up = linear_fc1(h)               one fused kernel between
    x, h = x + y, next_norm(x + y)                                                one fused kernel

The GEMMs are the layer's own Megatron modules (``linear_qkv``, ``linear_proj``, ``linear_fc1``, ``linear_fc2``), so
tensor parallelism and its all-reduces are unchanged; the norms are the modules' own weights and eps through
``F.rms_norm`` (what ``torch.nn.RMSNorm`` computes), the QKV split is ``get_query_key_value_tensors``'s and the MLP
is Megatron's gated-linear-unit formula. On CUDA the three fused pieces are ``torch.compile``d (one graph each,
static shapes, compiled on the first step, before any CUDA-graph capture); elsewhere they run eagerly, the same
arithmetic, so the CPU tests check the math against the unfused step.

Only for the spec this project builds without TransformerEngine (``torch.nn.RMSNorm`` norms, SwiGLU, no linear
biases); ``supported`` says whether a model qualifies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_COMPILED: dict[str, object] = {}


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE with tabulated cos/sin, the formula of Megatron's ``apply_rotary_pos_emb`` (rotate-half layout)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def qk_norm_rope(q, k, qw, kw, q_eps: float | None, k_eps: float | None, cos, sin):
    """QK RMSNorm then RoPE on ``q [s, b, heads, hd]`` and ``k [s, b, groups, hd]``."""
    hd = q.shape[-1]
    q = F.rms_norm(q, (hd,), qw, q_eps)
    k = F.rms_norm(k, (hd,), kw, k_eps)
    return rope(q, cos, sin), rope(k, cos, sin)


def add_norm(x, y, w, eps: float | None):
    """The residual add and the next RMSNorm: ``(x + y, norm(x + y))``."""
    x = x + y
    return x, F.rms_norm(x, (x.shape[-1],), w, eps)


def swiglu(h: torch.Tensor) -> torch.Tensor:
    """Megatron's gated linear unit with SiLU: ``silu(first half) * second half``."""
    gate, up = torch.chunk(h, 2, dim=-1)
    return F.silu(gate) * up


def _fn(name: str, fn, cuda: bool):
    if not cuda:
        return fn
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=False)
    return _COMPILED[name]


def supported(model) -> bool:
    """Whether ``model``'s layers are the ones this step reproduces."""
    layer = model.decoder.layers[0]
    attn, mlp = layer.self_attention, layer.mlp
    norms = (layer.input_layernorm, layer.pre_mlp_layernorm, attn.q_layernorm, attn.k_layernorm)
    cfg = mlp.config
    return (
        all(type(n) is torch.nn.RMSNorm for n in (*norms, model.decoder.final_layernorm))
        and cfg.gated_linear_unit
        and cfg.activation_func is F.silu
        and not cfg.add_bias_linear
    )


def run_layers(engine, x: torch.Tensor, cos, sin, cache, attend_fn) -> torch.Tensor:
    """All layers of a decode step from the embedding ``x [1, B, dim]``; returns the final-normed hidden state.

    ``attend_fn(attn, q, k, v, kv)`` writes K/V into the layer's cache and attends (``McoreEngine.step``'s)."""
    cuda = x.is_cuda
    qk, addn, act = _fn("qk", qk_norm_rope, cuda), _fn("add_norm", add_norm, cuda), _fn("swiglu", swiglu, cuda)
    layers = engine.layers
    first = layers[0].input_layernorm
    h = F.rms_norm(x, (x.shape[-1],), first.weight, first.eps)
    for i, (layer, kv) in enumerate(zip(layers, cache)):
        attn, mlp = layer.self_attention, layer.mlp
        mixed, split = attn.get_query_key_value_tensors(h, split_qkv=False)  # [s, b, groups, (hpg + 2) * hd]
        q, k, v = torch.split(mixed, split, dim=3)
        q = q.reshape(q.size(0), q.size(1), -1, attn.hidden_size_per_attention_head)
        qn, kn = attn.q_layernorm, attn.k_layernorm
        q, k = qk(q, k, qn.weight, kn.weight, qn.eps, kn.eps, cos, sin)
        y = attn.linear_proj(attend_fn(attn, q, k, v, kv))[0]
        norm = layer.pre_mlp_layernorm
        x, h = addn(x, y, norm.weight, norm.eps)
        y = mlp.linear_fc2(act(mlp.linear_fc1(h)[0]))[0]
        norm = layers[i + 1].input_layernorm if i + 1 < len(layers) else engine.model.decoder.final_layernorm
        x, h = addn(x, y, norm.weight, norm.eps)
    return h
