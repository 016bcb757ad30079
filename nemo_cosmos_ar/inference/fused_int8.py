"""The batch-1 int8 decode step with some small operations between its products folded into the CUDA kernel
(``--decode-int8-kernel fused``, the int8 default at TP=1; ``gemv_cuda.gemv_int8``'s ``norm``, ``residual``, ``glu``).

Why: after the int8 products (``gemv_cuda.py``) the step's time on an H200 is close to the sum of its kernels, and
the kernels between the products are ~350 us of a 1,485 us token (BENCHMARKS.md, issue 13, sixteenth session).
Some of that work a product can do on its way in or out:

    qkv = W_qkv · norm_in(r)                 the RMSNorm in the prologue (every block normalises the row it stages)
    r   = r + W_proj · attention(...)        the residual add in the epilogue (one more load per output row)
    h   = norm_mlp(r)                        a kernel of its own (see below)
    m   = silu(gate) * up, [gate; up] = W_fc1 · h
                                             fc1's rows interleaved (gate j, up j), so the warp that owns a pair
                                             writes silu(gate) * up
    r   = r + W_fc2 · m                      the residual add in the epilogue
    logits = W_out · final_norm(r)           the norm a kernel of its own

so a layer is 4 products, one norm, the QK-norm/RoPE kernel and the attention's two kernels: 8 launches instead of
10. Measured on the H200 (BENCHMARKS.md, issue 13, seventeenth session): the residual epilogues and the SwiGLU
epilogue cost nothing, the QKV's norm prologue nothing at its own block choice (``CONFIGS``), but the norm in fc1's
prologue cost 3 us and in the output layer's 5 us, more than the kernel it saves, so those two norms stay kernels.
The decode alone (bench_generate.py): +1.3% on one machine (625 -> 634 tokens/s), +0.2% on another (634 -> 635);
with fc1's norm folded in too, 612. The whole generate: +0.1% (630.3 -> 631.1 tokens/s, three pairs), within the
spread. It is the int8 default at TP=1 because no same-machine comparison found it slower.

Numbers: the QKV norm's squares are summed in another order than ``F.rms_norm`` and the normalised row is rounded
once (x * rs * w); the SwiGLU is computed in fp32 from bf16 gate and up and rounded once. The logits therefore
differ from ``fused_step.run_layers`` by bf16 rounding noise (the CPU tests bound it). TP=1 only: at TP > 1 the
row-parallel products need their all-reduce before the residual add.

Off CUDA (the CPU tests) every product is ``gemv_cuda.reference``: the same arithmetic in torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nemo_cosmos_ar.inference import gemv_cuda, quant
from nemo_cosmos_ar.inference.fused_step import _fn, _split_qkv, qk_norm_rope
from nemo_cosmos_ar.inference.quant import int8_weight, interleave_glu

# Block choices [rows, unroll, warps, blocks per SM] of the fused products where they differ from the plain kernel's
# (``gemv_cuda.SHAPE_CONFIGS``): the best of bench_gemv_fused.py's sweep on the H200 (call a20): QKV with its norm
# 10.1 us (12.2 at the plain kernel's blocks, the same 10.1 as the plain product), attention out with its residual
# 7.0 (7.5 plain).
CONFIGS = {"qkv": (2, 4, 8, 4), "proj": (1, 4, 8, 8)}


def supported(engine) -> bool:
    """Whether the engine's step can run here: TP=1, int8 weights whose rows the kernel takes (K a multiple of 16),
    every norm with an explicit eps."""
    model = engine.model
    norms = [model.decoder.final_layernorm]
    for layer in model.decoder.layers:
        norms += [layer.input_layernorm, layer.pre_mlp_layernorm]
    return (
        engine.tp == 1
        and quant.is_quantized(model)
        and all(n.eps is not None for n in norms)
        and all(m.weight.shape[1] % 16 == 0 for _, m in quant.decode_projections(model))
    )


def prepare(model, drop_plain: bool = True) -> int:
    """fc1's int8 rows interleaved for the ``glu`` epilogue, once per module (``quant.interleave_glu``). With
    ``drop_plain`` the plain int8 copy is dropped (about 1.9 GB for the 4B): another path then multiplies fc1 by its
    dequantized bf16 weight, which is the same model. Returns the bytes added."""
    added = 0
    for layer in model.decoder.layers:
        mlp = layer.mlp
        if getattr(mlp.linear_fc1, "weight_int8_glu", None) is None:
            q, s = interleave_glu(*int8_weight(mlp.linear_fc1))
            mlp.linear_fc1.weight_int8_glu, mlp.linear_fc1.weight_scale_glu = q, s
            added += q.numel() + 4 * s.numel()
        if drop_plain and getattr(mlp.linear_fc1, "weight_int8", None) is not None:
            del mlp.linear_fc1.weight_int8, mlp.linear_fc1.weight_scale
            added -= mlp.linear_fc1.weight_int8_glu.numel() + 4 * mlp.linear_fc1.weight_scale_glu.numel()
    return added


def run_layers(engine, x: torch.Tensor, cos, sin, cache, attend_fn) -> torch.Tensor:
    """All layers and the output layer of a batch-1 decode step from the embedding ``x [1, 1, dim]``; returns
    the logits ``[1, 1, vocab]`` (``prepare`` must have run; ``engine.pdl`` launches every kernel with PDL)."""
    cuda, pdl = x.is_cuda, engine.pdl

    def gemv(h, module, name, glu=False, **kw):
        w, s = (module.weight_int8_glu, module.weight_scale_glu) if glu else int8_weight(module)
        if cuda:
            return gemv_cuda.gemv_int8(h, w, s, pdl=pdl, glu=glu, config=CONFIGS.get(name), **kw)
        return gemv_cuda.reference(h, w, s, glu=glu, **kw)

    qk = _fn("qk", qk_norm_rope, cuda, pdl)
    rms = _fn("rms", _rms, cuda, pdl)
    r = x
    for layer, kv in zip(engine.layers, cache):
        attn, mlp = layer.self_attention, layer.mlp
        norm = layer.input_layernorm
        q, k, v = _split_qkv(attn, gemv(r, attn.linear_qkv, "qkv", norm=(norm.weight, norm.eps)))
        qn, kn = attn.q_layernorm, attn.k_layernorm
        q, k = qk(q, k, qn.weight, kn.weight, qn.eps, kn.eps, cos, sin)
        r = gemv(attend_fn(attn, q, k, v, kv), attn.linear_proj, "proj", residual=r)
        norm = layer.pre_mlp_layernorm  # a kernel: in fc1's prologue it cost 3 us against 29.5 (call a20)
        m = gemv(rms(r, norm.weight, norm.eps), mlp.linear_fc1, "fc1", glu=True)
        r = gemv(m, mlp.linear_fc2, "fc2", residual=r)
    norm = engine.model.decoder.final_layernorm  # a kernel: the output layer's prologue cost 5 us (call a20)
    return gemv(rms(r, norm.weight, norm.eps), engine.model.output_layer, "output")


def _rms(x, w, eps: float):
    return F.rms_norm(x, (x.shape[-1],), w, eps)
