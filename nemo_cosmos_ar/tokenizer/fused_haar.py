"""The multi-level 3D Haar patcher and un-patcher as one strided convolution each (the ``fast`` backend's version).

``modules.Patcher3D`` runs ``log2(p)`` levels, each of three grouped stride-2 convolutions per band (7 convolutions and a
concatenation per level, 2 levels for p = 4). The whole transform is linear and acts on disjoint p×p×p blocks, so it is
one stride-p convolution with a ``[C·p³, C, p, p, p]`` kernel (one-hot in the input channel), and the inverse is one
stride-p transposed convolution with a kernel of the same shape.

The kernels are read off the original modules by applying them to one-hot blocks, so band order and signs are theirs
by construction. Their entries are exactly ±1/p³ (forward) and ±1 (inverse): each level multiplies by
(1/√2)³ / (2√2) = 1/8 forward and (1/√2)³ · 2√2 = 1 inverse. The originals compute those factors with a rounded 1/√2,
so the fused result differs from theirs by rounding only (tests: ≤ 1e-6 absolute in fp32 on values in [-1, 1]);
both are exact in bf16 at the kernel level, the sums round differently.

The fused patcher needs T (after repeating the first frame p times), H and W to be multiples of p -- true for every
tokenizable clip (T = 1 + 8k, H and W multiples of 16); other sizes fall back to the level-by-level original, whose
reflect padding then matters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nemo_cosmos_ar.tokenizer.modules import Patcher3D, UnPatcher3D


def _blocks(p: int) -> torch.Tensor:
    # p³ one-hot p×p×p blocks, [p³, 1, p, p, p], in float64 so the read-off kernels carry no fp32 rounding.
    return torch.eye(p**3, dtype=torch.float64).reshape(p**3, 1, p, p, p)


def patcher_kernel(patcher: Patcher3D, channels: int) -> torch.Tensor:
    """``[C·p³, C, p, p, p]`` kernel of the whole forward transform (output channel ``band·C + c``)."""
    p = patcher.patch_size
    ref = Patcher3D(p).to(torch.float64)
    x = _blocks(p)
    for _ in range(ref.num_levels):  # the levels only (no first-frame repeat): block in, p³ bands at one position out
        x = ref._dwt(x)
    per_band = x.reshape(p**3, p**3).T.reshape(p**3, p, p, p)  # [band, dt, dh, dw]
    per_band = torch.round(per_band * p**3) / p**3  # exactly ±1/p³ (rounding only removes the 1/√2 residue)
    kernel = torch.zeros(p**3, channels, channels, p, p, p, dtype=torch.float64)
    for c in range(channels):
        kernel[:, c, c] = per_band
    return kernel.reshape(p**3 * channels, channels, p, p, p)


def unpatcher_kernel(unpatcher: UnPatcher3D, channels: int) -> torch.Tensor:
    """``[C·p³, C, p, p, p]`` transposed-convolution kernel of the whole inverse (input channel ``band·C + c``)."""
    p = unpatcher.patch_size
    ref = UnPatcher3D(p).to(torch.float64)
    x = torch.eye(p**3, dtype=torch.float64).reshape(p**3, p**3, 1, 1, 1)  # one band set to 1, one position
    for _ in range(ref.num_levels):
        x = ref._idwt(x)
    per_band = torch.round(x.reshape(p**3, p, p, p))  # exactly ±1
    kernel = torch.zeros(p**3, channels, channels, p, p, p, dtype=torch.float64)
    for c in range(channels):
        kernel[:, c, c] = per_band
    return kernel.reshape(p**3 * channels, channels, p, p, p)


class FusedPatcher3D(Patcher3D):
    """``Patcher3D`` as one stride-p convolution; same buffers and state-dict keys, same output layout.

    Args:
        patch_size: p, as for ``Patcher3D``.
        channels: input channels C (3 for RGB).
    """

    def __init__(self, patch_size: int = 4, channels: int = 3) -> None:
        super().__init__(patch_size)
        self.channels = channels
        # Not persistent: derived from the wavelet, so the state dict keeps exactly the released keys.
        self.register_buffer("fused_kernel", patcher_kernel(self, channels).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = torch.cat([x[:, :, :1].repeat_interleave(p, dim=2), x[:, :, 1:]], dim=2)
        if x.shape[1] != self.channels or any(s % p for s in x.shape[2:]):
            for _ in range(self.num_levels):  # sizes the single convolution cannot tile: the original levels
                x = self._dwt(x)
            return x
        return F.conv3d(x, self.fused_kernel.to(x.dtype), stride=p)


class FusedUnPatcher3D(UnPatcher3D):
    """``UnPatcher3D`` as one stride-p transposed convolution; same buffers and keys, same output.

    Args:
        patch_size: p, as for ``UnPatcher3D``.
        channels: output channels C (3 for RGB); the input has C·p³.
    """

    def __init__(self, patch_size: int = 4, channels: int = 3) -> None:
        super().__init__(patch_size)
        self.channels = channels
        self.register_buffer("fused_kernel", unpatcher_kernel(self, channels).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        if x.shape[1] != self.channels * p**3:
            return super().forward(x)
        x = F.conv_transpose3d(x, self.fused_kernel.to(x.dtype), stride=p)
        return x[:, :, p - 1 :]  # drop the copies of the first frame that the patcher added


def fuse_haar(network: torch.nn.Module) -> torch.nn.Module:
    """Swap the encoder's ``patcher3d`` and the decoder's ``unpatcher3d`` of a ``CausalVideoTokenizer`` for the fused
    versions, in place (buffers copied, so device and dtype are kept). Returns the network."""
    enc, dec = network.encoder, network.decoder
    channels = network.config.in_channels
    fused_p = FusedPatcher3D(enc.patcher3d.patch_size, channels)
    fused_u = FusedUnPatcher3D(dec.unpatcher3d.patch_size, channels)
    for old, new in ((enc.patcher3d, fused_p), (dec.unpatcher3d, fused_u)):
        ref = next(old.buffers())
        new.to(ref.device)
        new.load_state_dict(old.state_dict())
    enc.patcher3d, dec.unpatcher3d = fused_p, fused_u
    return network
