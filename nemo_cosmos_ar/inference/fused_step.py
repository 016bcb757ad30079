"""The decode step's layers with the small operations between the GEMMs fused (``McoreEngine.fused_step``).

At batch 1 a 4B decode step reads 8 GB of weights in about 2.0 ms on an H200, and the rest of the step is some 25
small kernels per layer (four RMSNorms, RoPE's slices and products, residual adds, SiLU and the gate product), each a
few microseconds even inside a CUDA graph. Here the same layer runs as:

    h = norm_in(x)                           (fused with the previous layer's residual add)
    q, k = rope(q_norm(q)), rope(k_norm(k)) of linear_qkv(h), v a view of it      one fused kernel (q and k
                                                                                  gathered inside it)
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

from nemo_cosmos_ar.inference import gemv as gemv_kernel
from nemo_cosmos_ar.inference import gemv_cuda
from nemo_cosmos_ar.inference.quant import int8_weight

_COMPILED: dict[str, object] = {}


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE with tabulated cos/sin, the formula of Megatron's ``apply_rotary_pos_emb`` (rotate-half layout)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def qk_norm_rope(q, k, qw, kw, q_eps: float | None, k_eps: float | None, cos, sin):
    """QK RMSNorm then RoPE on ``q [s, b, groups, hpg * hd]`` (``_split_qkv``'s view; any ``[s, b, ..., hd]``
    layout) and ``k [s, b, groups, hd]``; q is returned as ``[s, b, heads, hd]``. Compiled, the reshape of the strided
    query view is read inside the norm's kernel instead of costing a copy kernel of its own."""
    hd = k.shape[-1]
    q = F.rms_norm(q.reshape(q.size(0), q.size(1), -1, hd), (hd,), qw, q_eps)
    k = F.rms_norm(k, (hd,), kw, k_eps)
    return rope(q, cos, sin), rope(k, cos, sin)


def write_window(kc, vc, slots, k, v) -> None:
    """A verify forward's K/V (``k, v``: M positions x groups x hd values, position-major, e.g. ``[1, M, groups,
    hd]``) into one layer's cache ``kc, vc [1, groups, length, hd]`` at ``slots [M]``."""
    m, g, hd = slots.numel(), kc.shape[1], kc.shape[3]
    kc[:, :, slots] = k.reshape(m, g, hd).transpose(0, 1)[None]
    vc[:, :, slots] = v.reshape(m, g, hd).transpose(0, 1)[None]


def qk_norm_rope_cache(q, k, v, qw, kw, q_eps: float | None, k_eps: float | None, cos, sin, kc, vc, slots):
    """``qk_norm_rope`` for a verify forward's M positions with k (normed, rotated) and v written into the layer's
    cache by ``write_window``; returns q. Compiled, the writes are stores of the norm's kernel (inductor updates the
    caches in place) instead of two ``index_copy_`` launches a layer: 90 us of a 3.4 ms step at L = 63
    (BENCHMARKS.md, issue 13, twenty-fifth session)."""
    q, k = qk_norm_rope(q, k, qw, kw, q_eps, k_eps, cos, sin)
    write_window(kc, vc, slots, k, v)
    return q


def add_norm(x, y, w, eps: float | None):
    """The residual add and the next RMSNorm: ``(x + y, norm(x + y))``."""
    x = x + y
    return x, F.rms_norm(x, (x.shape[-1],), w, eps)


def swiglu(h: torch.Tensor) -> torch.Tensor:
    """Megatron's gated linear unit with SiLU: ``silu(first half) * second half``."""
    gate, up = torch.chunk(h, 2, dim=-1)
    return F.silu(gate) * up


def _fn(name: str, fn, cuda: bool, pdl: bool = False):
    """``fn`` compiled for CUDA (one compile per name; eager elsewhere). ``pdl``: inductor emits its kernels with
    programmatic dependent launch (each waits for the kernel before it inside, so it may be launched early), where
    this torch has the option."""
    if not cuda:
        return fn
    key = f"{name}+pdl" if pdl else name
    if key not in _COMPILED:
        import torch._inductor.config as inductor_config

        options = {"triton.enable_pdl": True} if pdl and hasattr(inductor_config.triton, "enable_pdl") else None
        _COMPILED[key] = torch.compile(fn, dynamic=False, options=options)
    return _COMPILED[key]


def pdl_supported(device: torch.device) -> bool:
    """Programmatic dependent launch needs a CUDA device of compute capability 9.0 (Hopper) or later."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9


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


def gemv_supported(model) -> bool:
    """Whether every projection of ``model``'s layers is a plain Megatron parallel linear that ``gemv`` can replace
    (no adapters, no sequence parallelism, no bias): then ``run_layers(..., gemv=True)`` computes the same products."""
    from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear

    for layer in model.decoder.layers:
        attn, mlp = layer.self_attention, layer.mlp
        for module, kind in (
            (attn.linear_qkv, ColumnParallelLinear),
            (attn.linear_proj, RowParallelLinear),
            (mlp.linear_fc1, ColumnParallelLinear),
            (mlp.linear_fc2, RowParallelLinear),
        ):
            if type(module) is not kind or module.sequence_parallel or module.bias is not None:
                return False
            if module.weight.dim() != 2 or module.weight.stride(-1) != 1:
                return False
        if (
            attn.linear_qkv.gather_output
            or mlp.linear_fc1.gather_output
            or getattr(mlp.linear_fc2, "explicit_expert_comm", False)
        ):
            return False
    out = model.output_layer
    return (
        type(out) is ColumnParallelLinear
        and not model.share_embeddings_and_output_weights
        and out.bias is None
        and not out.gather_output
    )


def _reduce(module, y: torch.Tensor, reducer=None) -> torch.Tensor:
    """The all-reduce a row-parallel module does after its product (none at TP=1); ``reducer``: the engine's
    symmetric-memory all-reduce (``symm_reduce.SymmReducer``) instead of the process group's, for rows it holds."""
    if module.tp_group.size() == 1:
        return y
    if reducer is not None and y.numel() <= reducer.numel:
        return reducer(y)
    from megatron.core.tensor_parallel.mappings import reduce_from_tensor_model_parallel_region

    return reduce_from_tensor_model_parallel_region(y, group=module.tp_group)


def project(
    module, h: torch.Tensor, gemv: bool, reduce: bool, pdl: bool = False, reducer=None, *, int8_cuda: bool = False
) -> torch.Tensor:
    """``module(h)[0]`` of a Megatron parallel linear; with ``gemv`` the batch-1 Triton product on this rank's
    weight (its int8 copy and scales once ``quant.quantize_model`` ran; ``pdl``: launched with programmatic dependent
    launch; ``int8_cuda``: an int8 weight's product by ``gemv_cuda.gemv_int8`` instead), then (row-parallel,
    ``reduce``) the all-reduce over the TP group that the module would do (by ``reducer`` when given, see
    ``_reduce``; batch-1 ``gemv`` path only)."""
    if not gemv:  # cuBLAS inside the module, and the module's own all-reduce
        return module(h)[0]
    w, scale = int8_weight(module)
    if int8_cuda and gemv_cuda.fits(h, w, scale):
        y = gemv_cuda.gemv_int8(h, w, scale, pdl=pdl)
    else:
        y = gemv_kernel.gemv(h, w, scale=scale, pdl=pdl)
    return _reduce(module, y, reducer) if reduce else y


def _split_qkv(attn, mixed: torch.Tensor):
    """Views (no copy) of q ``[s, b, groups, hpg * hd]``, k, v ``[s, b, groups, hd]`` of the QKV product
    ``[s, b, groups * (hpg + 2) * hd]`` (the layout ``get_query_key_value_tensors(split_qkv=False)`` returns: per
    group hpg query heads, then k, then v); ``qk_norm_rope`` takes q in this form."""
    hd, groups = attn.hidden_size_per_attention_head, attn.num_query_groups_per_partition
    hpg = attn.num_attention_heads_per_partition // groups
    return torch.split(mixed.view(*mixed.shape[:-1], groups, (hpg + 2) * hd), [hpg * hd, hd, hd], dim=3)


def run_layers(
    engine,
    x: torch.Tensor,
    cos,
    sin,
    cache,
    attend_fn,
    gemv: bool = False,
    glu: bool = False,
    pdl: bool = False,
    cache_slots: torch.Tensor | None = None,
) -> torch.Tensor:
    """All layers of a decode step from the embedding ``x [1, B, dim]``; returns the final-normed hidden state.

    ``attend_fn(attn, q, k, v, kv)`` writes K/V into the layer's cache and attends (``McoreEngine.step``'s).
    ``gemv``: the projections as ``gemv.gemv`` (the caller passes it at batch 1 only; ``gemv_supported(model)``
    must hold); with ``glu`` the MLP's fc1 and SwiGLU are one ``gemv(..., glu=True)`` (this rank's fc1 weight is
    ``[gate; up]`` at any TP size, the layout the SwiGLU's ``chunk`` splits). ``pdl``: every Triton kernel of the
    layers (products, compiled pieces) is launched with programmatic dependent launch (``pdl_supported``). With
    ``gemv`` the TP all-reduces go through ``engine.reducer`` when it is set (``symm_reduce.SymmReducer``).
    ``cache_slots`` (a verify forward's M positions, ``x [1, M, dim]``): K/V are written into the caches at these
    slots by the QK-norm/RoPE kernel (``qk_norm_rope_cache``) and ``attend_fn`` gets ``k = v = None``."""
    cuda = x.is_cuda
    qk, addn = _fn("qk", qk_norm_rope, cuda, pdl), _fn("add_norm", add_norm, cuda, pdl)
    act = _fn("swiglu", swiglu, cuda, pdl)
    layers = engine.layers
    reducer = engine.reducer if gemv else None
    c8 = engine.int8_kernel == "cuda"
    first = layers[0].input_layernorm
    h = F.rms_norm(x, (x.shape[-1],), first.weight, first.eps)
    for i, (layer, kv) in enumerate(zip(layers, cache)):
        attn, mlp = layer.self_attention, layer.mlp
        q, k, v = _split_qkv(attn, project(attn.linear_qkv, h, gemv, False, pdl, int8_cuda=c8))
        qn, kn = attn.q_layernorm, attn.k_layernorm
        if cache_slots is None:
            q, k = qk(q, k, qn.weight, kn.weight, qn.eps, kn.eps, cos, sin)
        else:
            qkc = _fn("qk_cache", qk_norm_rope_cache, cuda)
            q = qkc(q, k, v, qn.weight, kn.weight, qn.eps, kn.eps, cos, sin, kv[0], kv[1], cache_slots)
            k = v = None
        y = project(attn.linear_proj, attend_fn(attn, q, k, v, kv), gemv, True, pdl, reducer, int8_cuda=c8)
        norm = layer.pre_mlp_layernorm
        x, h = addn(x, y, norm.weight, norm.eps)
        if gemv and glu:
            w, scale = int8_weight(mlp.linear_fc1)
            m = gemv_kernel.gemv(h, w, scale=scale, glu=True, pdl=pdl)
        else:
            m = act(project(mlp.linear_fc1, h, gemv, False, pdl, int8_cuda=c8))
        y = project(mlp.linear_fc2, m, gemv, True, pdl, reducer, int8_cuda=c8)
        norm = layers[i + 1].input_layernorm if i + 1 < len(layers) else engine.model.decoder.final_layernorm
        x, h = addn(x, y, norm.weight, norm.eps)
    return h


def run_layers_gemv(engine, x: torch.Tensor, cos, sin, cache, attend_fn) -> torch.Tensor:
    """``run_layers`` at batch 1 with the operations between the projections folded into the matrix-vector kernel
    (``gemv.gemv``'s fusions); returns this rank's output-layer logits ``[1, 1, vocab / tp]``.

    Per layer 4 products and the QK-norm/RoPE kernel, instead of 4 products and 4 fused kernels:

        qkv = W_qkv · norm_in(r)              RMSNorm in the product's prologue
        r   = r + W_proj · attention(...)     residual add in the epilogue (TP=1; after the all-reduce otherwise)
        m   = W_fc1 · norm_mlp(r)
        r   = r + W_fc2 · swiglu(m)           SwiGLU in the prologue, residual add in the epilogue

    The normalised row is not rounded to bf16 before its product (the kernel scales the fp32 product by 1/rms), so
    the logits differ from ``run_layers`` by bf16 rounding noise; in fp32 they agree to ~1e-6. Int8 weights
    (``quant.py``) are multiplied as int8 with their scales, as in ``run_layers``."""

    def gemv(h, module, **kw):
        w, scale = int8_weight(module)
        return gemv_kernel.gemv(h, w, scale=scale, **kw)

    qk = _fn("qk", qk_norm_rope, x.is_cuda)
    r = x
    for layer, kv in zip(engine.layers, cache):
        attn, mlp = layer.self_attention, layer.mlp
        norm = layer.input_layernorm
        q, k, v = _split_qkv(attn, gemv(r, attn.linear_qkv, norm_weight=norm.weight, eps=norm.eps))
        qn, kn = attn.q_layernorm, attn.k_layernorm
        q, k = qk(q, k, qn.weight, kn.weight, qn.eps, kn.eps, cos, sin)
        o = attend_fn(attn, q, k, v, kv)
        if attn.linear_proj.tp_group.size() == 1:
            r = gemv(o, attn.linear_proj, residual=r)
        else:
            r = r + _reduce(attn.linear_proj, gemv(o, attn.linear_proj), engine.reducer)
        norm = layer.pre_mlp_layernorm
        m = gemv(r, mlp.linear_fc1, norm_weight=norm.weight, eps=norm.eps)
        if mlp.linear_fc2.tp_group.size() == 1:
            r = gemv(m, mlp.linear_fc2, swiglu=True, residual=r)
        else:
            r = r + _reduce(mlp.linear_fc2, gemv(m, mlp.linear_fc2, swiglu=True), engine.reducer)
    norm = engine.model.decoder.final_layernorm
    return gemv(r, engine.model.output_layer, norm_weight=norm.weight, eps=norm.eps)
