"""Building blocks of the causal DV8x16x16 video tokenizer (eager PyTorch, torch only).

All tensors are channel-first videos ``[B, C, T, H, W]``. Every block is *temporally causal*: output frame t depends
on input frames <= t only. Causality comes from three rules that the blocks below follow:

* temporal convolutions pad on the past side only, by repeating the first frame (never zeros, never the future);
* normalisation is a GroupNorm(1) applied to each frame separately (the time axis is folded into the batch);
* temporal attention is masked lower-triangular; spatial attention stays within one frame.

Module and attribute names (``conv3d``, ``norm``, ``conv1.0``, ``nin_shortcut``, ``q``/``k``/``v``/``proj_out``,
``wavelets``/``_arange``/``patch_size_buffer`` ...) follow the state-dict keys of the released TorchScript files
(``encoder.jit`` / ``decoder.jit`` of Cosmos-Tokenize1-DV8x16x16-720p) so that their weights load strictly. The order
of floating-point operations follows the released network too (grouped-convolution Haar transform, explicit softmax
attention, ``x * sigmoid(x)``), because FSQ rounding turns last-bit differences into different indices.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# The 1D Haar filter. A stride-2 correlation with [s, s] gives the low band s·(a + b) and with [s, -s] the high band.
_HAAR = (1 / math.sqrt(2), 1 / math.sqrt(2))
# Each 3D Haar level is rescaled by 1 / (2·sqrt(2)) so that a constant video keeps its value in the low band.
_HAAR_3D_SCALE = 2 * math.sqrt(2.0)


def swish(x: torch.Tensor) -> torch.Tensor:
    """SiLU written as the released network computes it (``F.silu`` rounds differently in the last bit)."""
    return x * torch.sigmoid(x)


def _triple(v: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return v if isinstance(v, tuple) else (v, v, v)


class CausalConv3d(nn.Module):
    """3D convolution that pads time on the past side only, by repeating the first frame.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: ``(kt, kh, kw)`` or one int; kh and kw must be odd.
        stride: spatial stride (H and W).
        time_stride: temporal stride.
        padding: zero padding on each side of H and W (applied here, not by ``nn.Conv3d``).

    With ``time_pad = kt - time_stride`` past frames added, T frames map to ``(T - 1) // time_stride + 1`` frames.
    """

    memory_format: torch.memory_format = torch.contiguous_format  # layout of the convolution's input

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int] = 3,
        stride: int = 1,
        time_stride: int = 1,
        padding: int = 1,
    ) -> None:
        super().__init__()
        kt, kh, kw = _triple(kernel_size)
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"spatial kernel sizes must be odd, got {(kh, kw)}")
        self.time_pad = kt - time_stride
        self.spatial_pad = padding
        self.conv3d = nn.Conv3d(in_channels, out_channels, (kt, kh, kw), stride=(time_stride, stride, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, Cin, T, H, W]`` -> ``[B, Cout, T', H', W']``."""
        if self.time_pad > 0:
            x = torch.cat([x[:, :, :1].repeat(1, 1, self.time_pad, 1, 1), x], dim=2)
        if self.spatial_pad > 0:
            p = self.spatial_pad
            x = F.pad(x, (p, p, p, p, 0, 0))
        # A permuted (e.g. channels-last) input would make conv3d pick another kernel and sum in another order, so
        # the layout is fixed here: row-major by default; the "fast" backend sets channels-last (backends.py).
        return self.conv3d(x.contiguous(memory_format=self.memory_format))


def factorized_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 1×3×3 spatial conv followed by a 3×1×1 causal temporal conv (keys ``.0.conv3d`` and ``.1.conv3d``)."""
    return nn.Sequential(
        CausalConv3d(in_channels, out_channels, kernel_size=(1, 3, 3), padding=1),
        CausalConv3d(out_channels, out_channels, kernel_size=(3, 1, 1), padding=0),
    )


def _frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    # [B, C, T, H, W] -> [B*T, C, H, W]
    return x.transpose(1, 2).flatten(0, 1)


def _batch_to_frames(x: torch.Tensor, batch: int) -> torch.Tensor:
    # [B*T, C, H, W] -> [B, C, T, H, W]
    return x.reshape(batch, -1, *x.shape[1:]).transpose(1, 2)  # reshape, not unflatten: torch.compile traces it


class FrameNorm(nn.Module):
    """GroupNorm(1) over (C, H, W) of each frame separately, so that normalising never mixes frames.

    Args:
        channels: number of channels C. The child ``norm`` carries the affine weight and bias (key ``.norm``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups=1, num_channels=channels, eps=1e-6, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _batch_to_frames(self.norm(_frames_to_batch(x)), x.shape[0])


class ResBlock(nn.Module):
    """Pre-activation residual block with factorised (spatial then temporal) causal convolutions.

    Args:
        in_channels: input channels.
        out_channels: output channels; a 1×1×1 ``nin_shortcut`` projects the skip path when they differ.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = FrameNorm(in_channels)
        self.conv1 = factorized_conv(in_channels, out_channels)
        self.norm2 = FrameNorm(out_channels)
        self.conv2 = factorized_conv(out_channels, out_channels)
        self.nin_shortcut: nn.Module = (
            CausalConv3d(in_channels, out_channels, kernel_size=1, padding=0)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))  # dropout is 0 in the released model, so there is none
        return self.nin_shortcut(x) + h


class _AttentionBase(nn.Module):
    # The softmax the attention calls; the ``fast`` backend swaps in an eager kernel the compiler cannot decompose.
    softmax = staticmethod(F.softmax)

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = FrameNorm(channels)
        self.q = CausalConv3d(channels, channels, kernel_size=1, padding=0)
        self.k = CausalConv3d(channels, channels, kernel_size=1, padding=0)
        self.v = CausalConv3d(channels, channels, kernel_size=1, padding=0)
        self.proj_out = CausalConv3d(channels, channels, kernel_size=1, padding=0)


class SpatialAttention(_AttentionBase):
    """Single-head self-attention among the H·W positions of each frame (one token per pixel, C channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = (_frames_to_batch(proj(h)).flatten(2) for proj in (self.q, self.k, self.v))  # [BT, C, HW]
        scores = torch.bmm(q.transpose(1, 2), k) * (q.shape[1] ** -0.5)  # [BT, HW(query), HW(key)]
        weights = self.softmax(scores, dim=2)
        out = torch.bmm(v, weights.transpose(1, 2))  # [BT, C, HW(query)]
        out = _batch_to_frames(out.reshape(*out.shape[:2], x.shape[3], x.shape[4]), x.shape[0])
        return x + self.proj_out(out)


class TemporalAttention(_AttentionBase):
    """Single-head causal self-attention along time, separately for every pixel position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, hh, ww = x.shape
        h = self.norm(x)
        # [B, C, T, H, W] -> [B*H*W, C, T] (contiguous, as in the released network, so that bmm sums in the same order)
        q, k, v = (proj(h).permute(0, 3, 4, 1, 2).flatten(0, 2) for proj in (self.q, self.k, self.v))
        scores = torch.bmm(q.transpose(1, 2), k) * (c**-0.5)  # [BHW, T(query), T(key)]
        causal = torch.tril(torch.ones_like(scores))
        scores = scores.masked_fill(causal == 0, float("-inf"))
        out = torch.bmm(self.softmax(scores, dim=2), v.transpose(1, 2))  # [BHW, T, C]
        out = out.transpose(1, 2).reshape(b, hh, ww, c, -1).permute(0, 3, 4, 1, 2)
        return x + self.proj_out(out)


def attention_pair(channels: int) -> nn.Sequential:
    """Spatial then temporal attention (keys ``.0.*`` and ``.1.*``): the tokenizer's ``mid.attn_1``."""
    return nn.Sequential(SpatialAttention(channels), TemporalAttention(channels))


def _avg_pool(x: torch.Tensor, kernel: tuple[int, int, int]) -> torch.Tensor:
    # CPU has no bf16/fp16 avg_pool3d. Averaging 2 or 4 bf16 values in fp32 is exact up to the final rounding, so
    # this equals the GPU kernel (which accumulates in fp32 too).
    if x.dtype in (torch.bfloat16, torch.float16) and x.device.type == "cpu":
        return F.avg_pool3d(x.float(), kernel_size=kernel, stride=kernel).to(x.dtype)
    return F.avg_pool3d(x, kernel_size=kernel, stride=kernel)


class Downsample(nn.Module):
    """Hybrid (strided conv + average pool) down-sampling by 2 in space and/or time.

    Args:
        channels: channels (unchanged).
        spatial: halve H and W (child ``conv1``, 1×3×3 stride 2).
        temporal: map T frames to ``(T - 1) // 2 + 1`` (child ``conv2``, 3×1×1 time-stride 2); the first frame is
            duplicated first so that it stays alone in its own output frame (the 1 + 8k convention).

    A 1×1×1 ``conv3`` follows. Children that a level does not use are absent, as in the released files.
    """

    def __init__(self, channels: int, spatial: bool, temporal: bool) -> None:
        super().__init__()
        if not (spatial or temporal):
            raise ValueError("a Downsample must act on space, time or both")
        self.spatial, self.temporal = spatial, temporal
        if spatial:
            self.conv1 = CausalConv3d(channels, channels, kernel_size=(1, 3, 3), stride=2, padding=0)
        if temporal:
            self.conv2 = CausalConv3d(channels, channels, kernel_size=(3, 1, 1), time_stride=2, padding=0)
        self.conv3 = CausalConv3d(channels, channels, kernel_size=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spatial:
            x = F.pad(x, (0, 1, 0, 1, 0, 0))  # right/bottom zero pad so that the 3×3 stride-2 conv halves H, W
            x = self.conv1(x) + _avg_pool(x, (1, 2, 2))
        if self.temporal:
            x = torch.cat([x[:, :, :1], x], dim=2)
            x = self.conv2(x) + _avg_pool(x, (2, 1, 1))
        return self.conv3(x)


class Upsample(nn.Module):
    """Hybrid (repeat + residual conv) up-sampling by 2 in time and/or space; the mirror of ``Downsample``.

    Args:
        channels: channels (unchanged).
        spatial: double H and W (nearest), then add a 1×3×3 conv (child ``conv2``).
        temporal: map T frames to 2T - 1 (repeat each frame, drop the first copy), then add a causal 3×1×1 conv
            (child ``conv1``).
    """

    def __init__(self, channels: int, spatial: bool, temporal: bool) -> None:
        super().__init__()
        if not (spatial or temporal):
            raise ValueError("an Upsample must act on space, time or both")
        self.spatial, self.temporal = spatial, temporal
        if temporal:
            self.conv1 = CausalConv3d(channels, channels, kernel_size=(3, 1, 1), padding=0)
        if spatial:
            self.conv2 = CausalConv3d(channels, channels, kernel_size=(1, 3, 3), padding=1)
        self.conv3 = CausalConv3d(channels, channels, kernel_size=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal:
            # For T == 1 this is the identity, which is also what the released network does.
            x = x.repeat_interleave(2, dim=2)[:, :, 1:]
            x = self.conv1(x) + x
        if self.spatial:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
            x = self.conv2(x) + x
        return self.conv3(x)


def _haar_filters(wavelets: torch.Tensor, arange: torch.Tensor, channels: int, dtype: torch.dtype):
    # Low-pass: the filter reversed; high-pass: alternating signs. Both [channels, 1, 2] for a grouped conv.
    low = wavelets.flip(0).reshape(1, 1, -1).repeat(channels, 1, 1).to(dtype)
    high = (wavelets * ((-1) ** arange)).reshape(1, 1, -1).repeat(channels, 1, 1).to(dtype)
    return low, high


def _axis_kernel(f: torch.Tensor, axis: int) -> torch.Tensor:
    # [C, 1, 2] -> a conv3d kernel that is 2 long on `axis` (0 = T, 1 = H, 2 = W) and 1 on the others.
    shape = [f.shape[0], 1, 1, 1, 1]
    shape[2 + axis] = f.shape[-1]
    return f.reshape(shape)


class Patcher3D(nn.Module):
    """Multi-level 3D Haar wavelet transform: ``[B, C, T, H, W]`` -> ``[B, C·p³, T', H/p, W/p]``.

    Args:
        patch_size: p, a power of 2 (4 for the released tokenizer: two Haar levels).

    The first frame is repeated p times first, so T = 1 + 8k frames become (p + 8k) / p = 1 + 2k frames for p = 4.
    Each level splits every channel into 8 sub-bands (low/high on T, then H, then W; ``lll`` first, ``hhh`` last)
    and divides by 2·sqrt(2). Buffers ``wavelets``, ``_arange``, ``patch_size_buffer`` mirror the released keys.
    """

    def __init__(self, patch_size: int = 4) -> None:
        super().__init__()
        if patch_size < 1 or patch_size & (patch_size - 1):
            raise ValueError(f"patch_size must be a power of 2, got {patch_size}")
        self.patch_size = patch_size
        self.num_levels = int(math.log2(patch_size))
        self.register_buffer("wavelets", torch.tensor(_HAAR))
        self.register_buffer("_arange", torch.arange(2))
        self.register_buffer("patch_size_buffer", torch.full((1,), patch_size, dtype=torch.int32))

    def _dwt(self, x: torch.Tensor) -> torch.Tensor:
        g = x.shape[1]
        low, high = _haar_filters(self.wavelets, self._arange, g, x.dtype)
        # One reflected sample on the far side of each axis: used only when a size is odd.
        x = F.pad(x, (0, 1, 0, 1, 0, 1), mode="reflect")
        bands = [x]
        for axis, stride in ((0, (2, 1, 1)), (1, (1, 2, 1)), (2, (1, 1, 2))):
            bands = [F.conv3d(b, _axis_kernel(f, axis), groups=g, stride=stride) for b in bands for f in (low, high)]
        return torch.cat(bands, dim=1) / _HAAR_3D_SCALE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, :, :1].repeat_interleave(self.patch_size, dim=2), x[:, :, 1:]], dim=2)
        for _ in range(self.num_levels):
            x = self._dwt(x)
        return x


class UnPatcher3D(nn.Module):
    """Inverse of ``Patcher3D``: ``[B, C·p³, T', H', W']`` -> ``[B, C, p·T' - (p - 1), p·H', p·W']``.

    Args:
        patch_size: p, as for the patcher.

    Buffers ``wavelets`` and ``_arange`` mirror the released keys.
    """

    def __init__(self, patch_size: int = 4) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.num_levels = int(math.log2(patch_size))
        self.register_buffer("wavelets", torch.tensor(_HAAR))
        self.register_buffer("_arange", torch.arange(2))

    def _idwt(self, x: torch.Tensor) -> torch.Tensor:
        g = x.shape[1] // 8
        low, high = _haar_filters(self.wavelets, self._arange, g, x.dtype)
        bands = list(torch.chunk(x, 8, dim=1))
        # Undo W, then H, then T: each step merges (low, high) pairs with transposed stride-2 convolutions.
        for axis, stride in ((2, (1, 1, 2)), (1, (1, 2, 1)), (0, (2, 1, 1))):
            kl, kh = _axis_kernel(low, axis), _axis_kernel(high, axis)
            bands = [
                F.conv_transpose3d(bands[i], kl, groups=g, stride=stride)
                + F.conv_transpose3d(bands[i + 1], kh, groups=g, stride=stride)
                for i in range(0, len(bands), 2)
            ]
        return bands[0] * _HAAR_3D_SCALE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.num_levels):
            x = self._idwt(x)
        return x[:, :, self.patch_size - 1 :]  # drop the copies of the first frame that the patcher added
