"""The multi-level 3D Haar patcher and un-patcher as element-wise arithmetic that rounds exactly where the originals
do (the ``fast`` backend's version).

``modules.Patcher3D`` runs ``log2(p)`` levels, each of six grouped stride-2 two-tap convolutions (T, then H, then W),
a concatenation and a division by 2·sqrt(2); ``UnPatcher3D`` mirrors it with transposed convolutions, additions and
a multiplication. In bf16 every one of those ops rounds its result to bf16, and the filters hold bf16(1/sqrt(2)) =
181/256, not 1/sqrt(2): eager bf16 rounds 8 times on the way through 2 levels, each time from a value that is not a
multiple of 1/64. One stride-p convolution with ±1/p³ weights (this module's first version) computes the exact
transform and rounds once, which disagrees with eager bf16 on a large share of the bands, enough to change ~20 % of
the FSQ indices of the whole tokenizer (measured on an H200). No pair of convolutions can reproduce those roundings
either (they happen after every axis), so the transforms here are written as what each eager op computes:

* a two-tap convolution step: ``round(x0·k0 + x1·k1)``, the products and their sum in fp32 (a bf16 or fp16 product
  is exact in fp32, so this equals any fp32-accumulating convolution, fused multiply-add or not);
* a one-tap transposed-convolution step: ``round(x·k)``, then the pairwise sum ``round(a + b)`` in fp32;
* the 1/(2·sqrt(2)) and 2·sqrt(2) scalings: ``round(y / s)`` and ``round(y · s)`` in fp32. For bf16 inputs the
  result is the same whether the fp32 step divides, multiplies by the fp32 reciprocal or runs in fp64: checked on
  every finite bf16 value (tests/test_tokenizer_fast.py), so it cannot depend on how a device or compiler divides.

where ``round`` is the cast back to the network's dtype (a no-op in fp32) that stores each step's result. The results
are bit-identical to the originals in bf16 (tests: eager on CPU and traced by torch.compile; also checked once with
inductor's C++ kernels). Inductor keeps
explicit casts inside its fused kernels only when ``emulate_precision_casts`` is on, as the ``fast`` backend sets it;
off, these transforms keep fp32 in between like the rest of the graph. In fp32 the originals' convolutions may round
``x0·k0 + x1·k1`` as one fused multiply-add, so the two agree within an fp32 rounding or two there.

On the released network in bf16 on a CPU (8 real-looking 33x256x384 clips) the one-convolution version left 81.4 %
of the indices equal to eager's and decoded at 45.6 dB against eager's decode, like the 79.2 % / 45.7 dB measured on
an H200; this version gives 100 % and identical frames.

Compiled, each level becomes one or two element-wise kernels instead of 7 convolutions and a concatenation.
The fused forms need T (after repeating the first frame p times), H and W to be multiples of p -- true for every
tokenizable clip (T = 1 + 8k, H and W multiples of 16); other sizes fall back to the level-by-level original, whose
reflect padding then matters.
"""

from __future__ import annotations

import torch

from nemo_cosmos_ar.tokenizer.modules import _HAAR_3D_SCALE, Patcher3D, UnPatcher3D

_COMPUTE = torch.float32  # what eager's bf16/fp16 kernels accumulate and compute in


def _filters(wavelets: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    # The originals' low and high filters (``modules._haar_filters``) at the precision eager convolves with: the
    # buffer cast to the activations' dtype, then widened for the fp32 arithmetic.
    low = wavelets.flip(0).to(dtype).to(_COMPUTE)
    high = (wavelets * torch.tensor([1.0, -1.0], dtype=wavelets.dtype, device=wavelets.device)).to(dtype)
    return low, high.to(_COMPUTE)


def _f32(x: torch.Tensor) -> torch.Tensor:
    return x.to(_COMPUTE)


def haar_level(x: torch.Tensor, wavelets: torch.Tensor) -> torch.Tensor:
    """One ``Patcher3D._dwt`` level on even sizes: ``[B, G, T, H, W]`` -> ``[B, 8·G, T/2, H/2, W/2]`` (band-major
    channels, ``lll`` first). Every step computes in fp32 and stores in ``x.dtype``, as eager's ops do."""
    dtype = x.dtype
    low, high = _filters(wavelets, dtype)
    x = x.unsqueeze(1)  # [B, bands, G, T, H, W]; each axis splits every band in two, the new bit least significant
    for dim in (3, 4, 5):
        pair = x.reshape(*x.shape[:dim], x.shape[dim] // 2, 2, *x.shape[dim + 1 :])
        x0, x1 = _f32(pair.select(dim + 1, 0)), _f32(pair.select(dim + 1, 1))
        lo = (x0 * low[0] + x1 * low[1]).to(dtype)
        hi = (x0 * high[0] + x1 * high[1]).to(dtype)
        x = torch.stack([lo, hi], dim=2).flatten(1, 2)
    return (_f32(x.flatten(1, 2)) / _HAAR_3D_SCALE).to(dtype)


def inverse_haar_level(x: torch.Tensor, wavelets: torch.Tensor) -> torch.Tensor:
    """One ``UnPatcher3D._idwt`` level: ``[B, 8·G, T, H, W]`` -> ``[B, G, 2T, 2H, 2W]``, each step computed in fp32 and
    stored in ``x.dtype`` as eager's ops do."""
    dtype = x.dtype
    low, high = _filters(wavelets, dtype)
    b, c, t, h, w = x.shape
    x = x.reshape(b, 2, 2, 2, c // 8, t, h, w)  # [B, t-bit, h-bit, w-bit, G, T, H, W]
    # Undo W, then H, then T (as the original): output sample j of a pair is round(lo·kl[j]) + round(hi·kh[j]).
    for bit, axis in ((3, -1), (2, -2), (1, -3)):  # axis: W, H, T counted from the end
        lo, hi = _f32(x.select(bit, 0)), _f32(x.select(bit, 1))
        out = [(_f32((lo * low[j]).to(dtype)) + _f32((hi * high[j]).to(dtype))).to(dtype) for j in (0, 1)]
        x = torch.stack(out, dim=axis).flatten(axis - 1, axis)  # [..., n, 2, ...] -> [..., 2n, ...], j fastest
    return (_f32(x) * _HAAR_3D_SCALE).to(dtype)


# The un-patcher as an opaque op for a compiled network (``opaque=True`` below): traced by torch.compile as one call
# of the eager function, so it keeps eager's kernels and roundings bit for bit. Needed on the GPU: there, inductor's
# fused Triton kernel for it decoded 8 clips at only 44.4 dB against eager bf16 (H200, 2026-11-30), although the same
# arithmetic run eagerly is identical to eager's. The patcher needs no such op: compiled, the encoder's indices were
# 100 % eager's.
@torch.library.custom_op("nemo_cosmos_ar::haar_unpatch", mutates_args=())
def haar_unpatch(x: torch.Tensor, wavelets: torch.Tensor, patch_size: int) -> torch.Tensor:
    # contiguous: the un-patcher ends with a frame slice (a strided view); the op's declared output is dense
    return _unpatch(x.contiguous(), wavelets, patch_size).contiguous()


@haar_unpatch.register_fake
def _(x: torch.Tensor, wavelets: torch.Tensor, patch_size: int) -> torch.Tensor:
    b, c, t, h, w = x.shape
    p = patch_size
    return x.new_empty(b, c // p**3, t * p - (p - 1), h * p, w * p)


def _unpatch(x: torch.Tensor, wavelets: torch.Tensor, p: int) -> torch.Tensor:
    for _ in range(p.bit_length() - 1):  # log2(p) levels, as the original's num_levels
        x = inverse_haar_level(x, wavelets)
    return x[:, :, p - 1 :]  # drop the copies of the first frame the patcher added


class FusedPatcher3D(Patcher3D):
    """``Patcher3D`` as element-wise ops with eager's rounding; same buffers and state-dict keys, same output.

    Args:
        patch_size: p, as for ``Patcher3D``.
        channels: input channels C (3 for RGB); kept for the interface of the first version.
    """

    def __init__(self, patch_size: int = 4, channels: int = 3) -> None:
        super().__init__(patch_size)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        if any(s % p for s in (x.shape[2] + p - 1, *x.shape[3:])):
            return super().forward(x)  # sizes the blocks cannot tile: the original levels (reflect padding)
        x = torch.cat([x[:, :, :1].repeat_interleave(p, dim=2), x[:, :, 1:]], dim=2)
        for _ in range(self.num_levels):
            x = haar_level(x, self.wavelets)
        return x


class FusedUnPatcher3D(UnPatcher3D):
    """``UnPatcher3D`` as element-wise ops with eager's rounding; same buffers and keys, same output.

    Args:
        patch_size: p, as for ``UnPatcher3D``.
        channels: output channels C (3 for RGB); the input has C·p³.
        opaque: run as the ``haar_unpatch`` op, which torch.compile cannot fuse into its own kernels.
    """

    def __init__(self, patch_size: int = 4, channels: int = 3, opaque: bool = False) -> None:
        super().__init__(patch_size)
        self.channels, self.opaque = channels, opaque

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (haar_unpatch if self.opaque else _unpatch)(x, self.wavelets, self.patch_size)


def fuse_haar(network: torch.nn.Module, opaque: bool = False) -> torch.nn.Module:
    """Swap the encoder's ``patcher3d`` and the decoder's ``unpatcher3d`` of a ``CausalVideoTokenizer`` for the fused
    versions, in place (buffers copied, so device and dtype are kept); ``opaque``: the un-patcher as the op
    torch.compile keeps whole (the patcher stays fusable: compiled, the encoder's indices were eager's on the H200).
    Returns the network."""
    enc, dec = network.encoder, network.decoder
    channels = network.config.in_channels
    fused_p = FusedPatcher3D(enc.patcher3d.patch_size, channels)
    fused_u = FusedUnPatcher3D(dec.unpatcher3d.patch_size, channels, opaque)
    for old, new in ((enc.patcher3d, fused_p), (dec.unpatcher3d, fused_u)):
        ref = next(old.buffers())
        new.to(ref.device)
        new.load_state_dict(old.state_dict())
    enc.patcher3d, dec.unpatcher3d = fused_p, fused_u
    return network
