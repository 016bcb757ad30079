"""3D rotary position embedding of the Cosmos AR models.

Facts (cosmos-predict1 ``modules/embedding.py``, RoPE "v2"):

* head_dim D is split into a temporal part ``dim_t = D - 2*(D//6*2)`` and two spatial parts
  ``dim_h = dim_w = D//6*2`` (128 -> 44/42/42). Inverse frequencies are ``θ^(-2i/dim_axis)``; H and W share one
  table (``dim_h == dim_w``).
* A token at grid position (t, h, w) gets the half angle vector ``[t·ω_t, h·ω_s, w·ω_s]`` (D/2 angles). The full
  vector is that half repeated twice, and the rotation is the non-interleaved rotate-half
  ``x·cos + cat(-x2, x1)·sin`` -- exactly what Megatron-Core's ``apply_rotary_pos_emb`` does with
  ``rotary_interleaved=False`` given a ``[S, 1, 1, D]`` angle table.
* Sequence index p maps to (t, h, w) in row-major (T, H, W) order, W fastest. Positions past T·H·W continue the
  temporal axis (t = p // (H·W)), so a KV-cache decoder can ask for any absolute position.
* YaRN (12B): per-frequency factor ``(1-m)/scale + m`` with ``m = clamp((ω - lo)/(hi - lo), 0, 1)``,
  ``hi = 2π·β_fast/L0``, ``lo = 2π·β_slow/L0``; L0 is ``original_latent_shape[1]`` for both spatial axes and
  ``original_latent_shape[0]`` for time. mscale is not applied (cosmos-predict1's v2 RoPE ignores it).

The pure functions come first (torch only); ``RotaryEmbedding3D`` adapts them to Megatron-Core's
``rotary_pos_emb(seq_len) -> freqs`` interface. It keeps no registered buffers, so it never appears in
``state_dict`` or ``sharded_state_dict``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nemo_cosmos_ar.tokenizer import grid


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """(dim_t, dim_h, dim_w) of the head-dim split; 128 -> (44, 42, 42)."""
    dim_h = head_dim // 6 * 2
    return head_dim - 2 * dim_h, dim_h, dim_h


def axis_inv_freqs(head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Temporal and spatial inverse frequencies, fp32: ``[dim_t/2]`` and ``[dim_h/2]``."""
    dim_t, dim_s, _ = axis_dims(head_dim)
    inv_t = 1.0 / theta ** (torch.arange(0, dim_t, 2, dtype=torch.float64) / dim_t)
    inv_s = 1.0 / theta ** (torch.arange(0, dim_s, 2, dtype=torch.float64) / dim_s)
    return inv_t.float(), inv_s.float()


def yarn_factors(inv_freq: torch.Tensor, scale: float, beta_fast: float, beta_slow: float, original_len: int):
    """Per-frequency YaRN multipliers: 1/scale for slow frequencies, 1 for fast ones, a linear ramp between."""
    hi = 2 * math.pi * beta_fast / original_len
    lo = 2 * math.pi * beta_slow / original_len
    m = ((inv_freq - lo) / (hi - lo)).clamp(0.0, 1.0)
    return (1.0 - m) / scale + m


def scaled_inv_freqs(
    head_dim: int,
    theta: float,
    apply_yarn: bool = False,
    yarn_scale: float = 1.0,
    yarn_beta_fast: float = 4.0,
    yarn_beta_slow: float = 1.0,
    original_latent_shape: tuple[int, int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    inv_t, inv_s = axis_inv_freqs(head_dim, theta)
    if apply_yarn:
        assert original_latent_shape is not None
        inv_t = inv_t * yarn_factors(inv_t, yarn_scale, yarn_beta_fast, yarn_beta_slow, original_latent_shape[0])
        inv_s = inv_s * yarn_factors(inv_s, yarn_scale, yarn_beta_fast, yarn_beta_slow, original_latent_shape[1])
    return inv_t, inv_s


def positions_to_grid(positions: torch.Tensor, latent_shape: tuple[int, int, int]) -> tuple[torch.Tensor, ...]:
    """Sequence index -> (t, h, w), row-major with W fastest; t keeps counting past the grid."""
    _, h, w = latent_shape
    return positions // grid.tokens_per_frame(latent_shape), (positions // w) % h, positions % w


def rope_angles(positions: torch.Tensor, latent_shape: tuple[int, int, int], inv_t, inv_s) -> torch.Tensor:
    """Angle table ``[len(positions), head_dim]`` fp32 for absolute sequence positions."""
    t, h, w = (x.to(torch.float32) for x in positions_to_grid(positions.long(), latent_shape))
    half = torch.cat(
        [
            t[:, None] * inv_t.to(t.device)[None],
            h[:, None] * inv_s.to(t.device)[None],
            w[:, None] * inv_s.to(t.device)[None],
        ],
        dim=-1,
    )
    return torch.cat([half, half], dim=-1)


def rope_3d_table(cfg, positions: torch.Tensor | None = None, device=None) -> torch.Tensor:
    """Megatron-Core style angle table ``[S, 1, 1, head_dim]`` fp32 for ``cfg`` (a ``CosmosARConfig``).

    ``positions`` defaults to 0 .. T·H·W-1.
    """
    inv_t, inv_s = scaled_inv_freqs(
        cfg.head_dim,
        cfg.rope_theta,
        cfg.apply_yarn,
        cfg.yarn_scale,
        cfg.yarn_beta_fast,
        cfg.yarn_beta_slow,
        cfg.original_latent_shape,
    )
    if positions is None:
        positions = torch.arange(cfg.seq_length, device=device)
    return rope_angles(positions.to(device), cfg.latent_shape, inv_t, inv_s)[:, None, None, :]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [..., head_dim]`` by ``angles`` (broadcastable); cos/sin in fp32, cast to x's dtype."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding3D(nn.Module):
    """Drop-in for ``GPTModel.rotary_pos_emb``: ``forward(seq_len, offset=0) -> [seq_len, 1, 1, head_dim]``.

    The table is recomputed when the device or length changes and cached in a plain attribute (not a buffer), so
    checkpoints never carry it and the module is safe in ``sharded_state_dict``.
    """

    def __init__(self, cfg) -> None:
        super().__init__()
        self.cfg = cfg
        self._cache: tuple[tuple, torch.Tensor] | None = None

    def forward(self, max_seq_len: int, offset: int = 0, packed_seq: bool = False, **_: object) -> torch.Tensor:
        if packed_seq:
            raise NotImplementedError("packed sequences are not used by Cosmos AR (one clip = one sample)")
        device = _current_device()
        key = (int(max_seq_len), int(offset), str(device))
        if self._cache is None or self._cache[0] != key:
            pos = torch.arange(offset, offset + max_seq_len, device=device)
            self._cache = (key, rope_3d_table(self.cfg, pos, device=device))
        return self._cache[1]

    def get_rotary_seq_len(self, inference_context, transformer, transformer_input, transformer_config, *a, **k):
        """Same contract as Megatron-Core's ``RotaryEmbedding.get_rotary_seq_len``."""
        if inference_context is not None:
            return inference_context.max_sequence_length
        seq_len = transformer_input.size(0) if transformer.input_tensor is None else transformer.input_tensor.size(0)
        if transformer_config.sequence_parallel:
            from megatron.core import parallel_state

            seq_len *= parallel_state.get_tensor_model_parallel_world_size()
        seq_len *= transformer_config.context_parallel_size
        return seq_len


def _current_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
