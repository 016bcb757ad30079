"""A fused RoPE kernel for Megatron-Core without TransformerEngine (Megatron-Core only, no NeMo).

Megatron's unfused ``_apply_rotary_pos_emb_bshd`` runs about ten elementwise kernels per call (cos, sin, two
multiplies, a negation, two concatenations for ``rotate_half`` and for the empty pass-through part, an add), each a
full pass over q or k, forward and backward: about 10 ms per step for the 4B at 12,800 tokens on an H200. With
``apply_rope_fusion=True`` Megatron calls ``fused_apply_rotary_pos_emb`` instead, which only TransformerEngine
provides. ``install()`` provides it: the same formula (non-interleaved halves, as Cosmos's RoPE) compiled by
``torch.compile`` into one kernel each way, computing in fp32 and rounding once. Cosmos applies no YaRN mscale
(``rope3d.py``), so the fused path, which takes none, computes the same function.
"""

from __future__ import annotations

import torch


def _rope(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    x = t.float()
    f = freqs.float()
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x * f.cos() + rotated * f.sin()).to(t.dtype)


_compiled = None


def fused_apply_rotary_pos_emb(t: torch.Tensor, freqs: torch.Tensor, interleaved: bool = False, **_: object):
    """``t`` ``[s, b, heads, d]``, ``freqs`` ``[s, 1, 1, d]`` (Megatron's layout) -> rotated ``t``."""
    global _compiled
    if interleaved:
        raise ValueError("the fused RoPE here implements the non-interleaved (halves) layout only")
    if freqs.shape[-1] != t.shape[-1]:
        raise ValueError(f"partial rotary dims are not supported (freqs {freqs.shape[-1]} vs head dim {t.shape[-1]})")
    if _compiled is None:
        _compiled = torch.compile(_rope, dynamic=False)
    return _compiled(t, freqs)


def install() -> bool:
    """Let ``apply_rope_fusion=True`` work without TransformerEngine; False if a fused RoPE is already there."""
    from megatron.core.models.common.embeddings import rope_utils

    if rope_utils.fused_apply_rotary_pos_emb is not None:
        return False
    rope_utils.fused_apply_rotary_pos_emb = fused_apply_rotary_pos_emb
    return True
