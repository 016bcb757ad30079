"""Finite scalar quantisation (FSQ) of the DV8x16x16 tokenizer: 6 latent channels, levels [8, 8, 8, 5, 5, 5].

Facts (cosmos-predict1 ``tokenizer/modules/quantizers.py`` ``FSQuantizer``, confirmed by running it):

* The codebook is implicit: every channel i is rounded to one of ``L_i`` values, so there are
  8·8·8·5·5·5 = **64,000** codes. Indices are **0-based**, 0..63,999.
* index = Σ c_i · basis_i with digits ``c_i ∈ [0, L_i - 1]`` and mixed-radix basis ``cumprod([1, L_0, ..., L_4])``
  = [1, 8, 64, 512, 2560, 12800]; channel 0 is the least significant digit.
* Quantisation: ``c_i = round(bound(z_i)) + L_i // 2`` where
  ``bound(z) = tanh(z + atanh(off / half)) · half - off``, ``half = (L - 1)(1 + 1e-3) / 2`` and ``off = 0.5`` for
  even L, else 0. ``round`` is round-half-to-even (``torch.round``).
* Codes are the centred digits ``(c - L//2) / (L//2)``: a level-8 channel takes values in {-1, -0.75, ..., 0.75},
  a level-5 channel in {-1, -0.5, 0, 0.5, 1}. They are exact in bf16.

The pure functions work on channel-last tensors ``[..., D]``. ``FSQuantizer`` is the ``nn.Module`` used inside the
network: it works on channel-first ``[B, D, T, H, W]`` latents and owns the three buffers that the released
``encoder.jit``/``decoder.jit`` carry in their state dicts (``_levels``, ``_basis``, ``implicit_codebook``), so those
files load strictly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

LEVELS: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
CODEBOOK_SIZE: int = math.prod(LEVELS)  # 8*8*8*5*5*5
# Widens the tanh range a little past the outer levels so that they are reachable after rounding.
_BOUND_EPS = 1e-3

LevelsLike = Sequence[int] | torch.Tensor


def _levels_tensor(levels: LevelsLike, device: torch.device) -> torch.Tensor:
    # Tensors pass through untouched: inside the network they are the int32 buffers, already on the right device,
    # and a .to(device) here would be baked into a traced TorchScript graph as a fixed device.
    if isinstance(levels, torch.Tensor):
        return levels
    return torch.tensor(list(levels), dtype=torch.int32, device=device)


def codebook_size(levels: LevelsLike = LEVELS) -> int:
    """Number of codes, the product of the levels (64,000 for the released tokenizer)."""
    return math.prod(int(v) for v in levels)


def basis(levels: LevelsLike = LEVELS, device: torch.device | str | None = None) -> torch.Tensor:
    """Mixed-radix weights of the digits: ``[1, L_0, L_0·L_1, ...]`` as int32 ``[D]``."""
    if isinstance(levels, torch.Tensor):
        lv = levels if device is None else levels.to(device)
    else:
        lv = _levels_tensor(levels, torch.device(device if device is not None else "cpu"))
    ones = torch.ones(1, dtype=torch.int32, device=lv.device)
    return torch.cumprod(torch.cat([ones, lv[:-1].to(torch.int32)]), dim=0).to(torch.int32)


def bound(z: torch.Tensor, levels: LevelsLike = LEVELS) -> torch.Tensor:
    """Squash latents into the open range that rounds onto the levels (``FSQuantizer.bound``).

    Args:
        z: ``[..., D]`` float latents (any float dtype).

    Returns:
        ``[..., D]`` float32. Computed in float32 whatever ``z``'s dtype: the released bf16 network promotes here
        too, because its level-dependent shift is a float32 tensor.
    """
    lv = _levels_tensor(levels, z.device)
    half = (lv - 1) * (1 + _BOUND_EPS) / 2
    offset = torch.where(lv % 2 == 0, 0.5, 0.0)
    shift = torch.atanh(offset / half)
    return torch.tanh(z.float() + shift) * half - offset


def quantize(z: torch.Tensor, levels: LevelsLike = LEVELS) -> torch.Tensor:
    """Quantise latents to FSQ codes.

    Args:
        z: ``[..., D]`` float latents.

    Returns:
        ``[..., D]`` float32 codes in [-1, 1] (see module docstring for the exact value set).
    """
    lv = _levels_tensor(levels, z.device)
    return torch.round(bound(z, lv)) / (lv // 2)


def codes_to_indices(codes: torch.Tensor, levels: LevelsLike = LEVELS) -> torch.Tensor:
    """Map codes to 0-based codebook indices.

    Args:
        codes: ``[..., D]`` float codes, as returned by ``quantize`` or ``indices_to_codes``.

    Returns:
        ``[...]`` int64 indices in ``[0, codebook_size(levels))``.
    """
    lv = _levels_tensor(levels, codes.device)
    if codes.shape[-1] != lv.numel():
        raise ValueError(f"codes have {codes.shape[-1]} channels in the last dim but there are {lv.numel()} levels")
    half_width = (lv // 2).to(torch.float32)
    # Rounding makes the digits exact even if the codes went through bf16 or a lossy cast.
    digits = torch.round(codes.float() * half_width + half_width).long()
    return (digits * basis(lv).long()).sum(dim=-1)


def indices_to_codes(indices: torch.Tensor, levels: LevelsLike = LEVELS) -> torch.Tensor:
    """Inverse of ``codes_to_indices``.

    Args:
        indices: ``[...]`` integer indices in ``[0, codebook_size(levels))``.

    Returns:
        ``[..., D]`` float32 codes in [-1, 1].
    """
    lv = _levels_tensor(levels, indices.device)
    return _digits_to_codes(indices.long().unsqueeze(-1), lv, basis(lv))


def _digits_to_codes(indices: torch.Tensor, lv: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    # indices: [..., 1] int; lv/base: [D] int32. Integer floor-division and modulo extract each digit exactly.
    digits = (indices // base) % lv
    half_width = lv // 2
    return ((digits - half_width) / half_width).float()


class FSQuantizer(nn.Module):
    """FSQ layer on channel-first latents, with the buffer names of the released TorchScript files.

    Args:
        levels: quantisation levels per channel; ``len(levels)`` is the latent (embedding) dim D.

    The buffers are persistent on purpose: the released ``encoder.jit`` holds ``quantizer.{_levels, _basis,
    implicit_codebook}`` and ``decoder.jit`` holds ``inv_quant.quantizer.{...}``, and strict loading
    needs them. ``implicit_codebook`` ``[codebook_size, D]`` is the code of every index; nothing reads it at run
    time.
    """

    def __init__(self, levels: Sequence[int] = LEVELS) -> None:
        super().__init__()
        self.levels = tuple(int(v) for v in levels)
        self.register_buffer("_levels", torch.tensor(self.levels, dtype=torch.int32))
        self.register_buffer("_basis", basis(self._levels))
        all_indices = torch.arange(codebook_size(self.levels), device=self._levels.device)
        # bf16 like the released files (the codes are exact in bf16).
        self.register_buffer("implicit_codebook", indices_to_codes(all_indices, self._levels).to(torch.bfloat16))

    @property
    def embedding_dim(self) -> int:
        return len(self.levels)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantise a latent video.

        Args:
            z: ``[B, D, T, H, W]`` float latents (output of ``quant_conv``).

        Returns:
            ``(indices, codes, dummy)``: indices ``[B, T, H, W]`` int32 (the released format), codes
            ``[B, D, T, H, W]`` in z's dtype with values in [-1, 1], and a zero ``[B]`` tensor standing in for the
            quantisation loss that the released encoder also returns.
        """
        z_last = z.movedim(1, -1)
        codes = torch.round(bound(z_last, self._levels)) / (self._levels // 2)
        half_width = self._levels // 2
        digits = torch.round(codes * half_width + half_width).long()
        indices = (digits * self._basis.long()).sum(dim=-1).to(torch.int32)
        codes = codes.movedim(-1, 1).to(z.dtype)
        return indices, codes, z.new_zeros(z.shape[0])

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Map ``[B, T, H, W]`` integer indices to ``[B, D, T, H, W]`` float32 codes."""
        codes = _digits_to_codes(indices.long().unsqueeze(-1), self._levels, self._basis)
        return codes.movedim(-1, 1)


class InverseQuantizer(nn.Module):
    """Indices -> codes, cast to the dtype of the layer that follows; the ``inv_quant`` stage of ``decoder.jit``.

    Args:
        quantizer: the FSQ layer whose buffers it shares (keys ``inv_quant.quantizer.*``).
        dtype_source: a module whose first parameter's dtype the codes are cast to (``post_quant_conv``).
    """

    def __init__(self, quantizer: FSQuantizer, dtype_source: nn.Module) -> None:
        super().__init__()
        self.quantizer = quantizer
        # A plain attribute (not a child) so the state dict keeps exactly the released keys.
        self._dtype_source = [dtype_source]

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """``[B, T, H, W]`` integer indices -> ``[B, D, T, H, W]`` codes in the network's dtype."""
        weight = next(self._dtype_source[0].parameters())
        return self.quantizer.indices_to_codes(indices).to(weight.dtype)
