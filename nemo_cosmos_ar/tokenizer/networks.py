"""The causal DV8x16x16 discrete video tokenizer network (eager PyTorch): config, encoder, decoder, and the wrapper
whose ``encoder_jit()`` / ``decoder_jit()`` views have the module layout of the released TorchScript files.

Architecture (cosmos-predict1 ``tokenizer/networks/discrete_video.py`` with the "FACTORIZED" 3D
encoder/decoder), released sizes in brackets:

* encoder: 3D Haar patcher (×4 in T, H, W: 3 -> 192 channels) -> factorised conv_in [192 -> 128] -> one level per
  ``channels_mult`` entry [2, 4, 4], each with ``num_res_blocks`` [2] residual blocks, down-sampling after every
  level but the last (space at the first ``log2(16/4) = 2`` levels, time at the first ``log2(8/4) = 1``) ->
  mid block (res, spatial + temporal attention, res) -> GroupNorm, swish, factorised conv_out [512 -> 16];
* ``quant_conv`` 1×1×1 [16 -> 6] -> FSQ levels [8, 8, 8, 5, 5, 5] (64,000 codes);
* decoder: inverse FSQ -> ``post_quant_conv`` [6 -> 16] -> the mirror image, with ``num_res_blocks + 1`` residual
  blocks per level, up-sampling time+space at the second-to-last-resolution level and space only at the lowest ->
  Haar un-patcher.

``attn_resolutions=[32]`` in NVIDIA's config never matches a level (the resolutions are 256/128/64), so attention
lives only in the mid blocks and this implementation has no per-level attention.

Shapes: T = 1 + 8k frames -> 1 + k latent frames; H, W multiples of 16 -> H/16, W/16. 33×640×1024 -> 5×40×64.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from nemo_cosmos_ar.tokenizer import grid
from nemo_cosmos_ar.tokenizer.fsq import LEVELS, FSQuantizer, InverseQuantizer
from nemo_cosmos_ar.tokenizer.modules import (
    CausalConv3d,
    Downsample,
    FrameNorm,
    Patcher3D,
    ResBlock,
    UnPatcher3D,
    Upsample,
    attention_pair,
    factorized_conv,
    swish,
)


@dataclass(kw_only=True)
class TokenizerConfig:
    """Hyper-parameters of the causal discrete video tokenizer. Defaults are the released DV8x16x16-720p values.

    Attributes:
        channels: base width; level i has ``channels * channels_mult[i]`` channels.
        channels_mult: width multiplier per resolution level.
        num_res_blocks: residual blocks per encoder level (the decoder has one more per level).
        in_channels: pixel channels (RGB).
        z_channels: channels of the continuous latent before ``quant_conv``.
        levels: FSQ levels; ``len(levels)`` is the quantised embedding dim.
        patch_size: Haar patcher factor in T, H and W.
        spatial_compression: total H and W down-sampling factor.
        temporal_compression: total T down-sampling factor (on the 8k part of 1 + 8k frames).
    """

    channels: int = 128
    channels_mult: tuple[int, ...] = (2, 4, 4)
    num_res_blocks: int = 2
    in_channels: int = 3
    z_channels: int = 16
    levels: tuple[int, ...] = LEVELS
    patch_size: int = 4
    spatial_compression: int = 16
    temporal_compression: int = 8

    def __post_init__(self) -> None:
        self.channels_mult = tuple(self.channels_mult)
        self.levels = tuple(self.levels)
        for name in ("patch_size", "spatial_compression", "temporal_compression"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"TokenizerConfig.{name} must be a power of 2, got {value}")
        steps = (("spatial_compression", self.num_spatial_downs), ("temporal_compression", self.num_temporal_downs))
        for name, downs in steps:
            if not 0 <= downs < len(self.channels_mult):
                raise ValueError(
                    f"TokenizerConfig.{name}: needs {downs} down-sampling steps but channels_mult has "
                    f"{len(self.channels_mult)} levels (at most len(channels_mult) - 1 steps)"
                )

    @property
    def num_spatial_downs(self) -> int:
        return int(math.log2(self.spatial_compression)) - int(math.log2(self.patch_size))

    @property
    def num_temporal_downs(self) -> int:
        return int(math.log2(self.temporal_compression)) - int(math.log2(self.patch_size))

    @property
    def embedding_dim(self) -> int:
        return len(self.levels)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid ``(T', H', W')`` of one clip of ``num_frames`` (1 + 8k) frames at ``height``×``width``."""
        return grid.latent_shape(num_frames, height, width, self.temporal_compression, self.spatial_compression)


def tiny_config() -> TokenizerConfig:
    """A few-thousand-parameter tokenizer with the released topology and compression, for CPU tests."""
    return TokenizerConfig(channels=8, channels_mult=(1, 2, 2), num_res_blocks=1, z_channels=4)


PRESETS = {"dv8x16x16": TokenizerConfig, "tiny": tiny_config}


def get_config(preset: str) -> TokenizerConfig:
    """A fresh ``TokenizerConfig`` for ``preset`` (one of ``PRESETS``: ``"dv8x16x16"`` = released, ``"tiny"``)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown tokenizer preset {preset!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[preset]()


class Encoder(nn.Module):
    """Pixels ``[B, 3, T, H, W]`` in [-1, 1] -> continuous latent ``[B, z_channels, T', H', W']``."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.patcher3d = Patcher3D(cfg.patch_size)
        widths = [cfg.channels * m for m in cfg.channels_mult]
        self.conv_in = factorized_conv(cfg.in_channels * cfg.patch_size**3, cfg.channels)
        self.down = nn.ModuleList()
        block_in = cfg.channels
        for i, width in enumerate(widths):
            level = nn.Module()
            level.block = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                level.block.append(ResBlock(block_in, width))
                block_in = width
            if i < len(widths) - 1:
                level.downsample = Downsample(
                    width, spatial=i < cfg.num_spatial_downs, temporal=i < cfg.num_temporal_downs
                )
            self.down.append(level)
        self.mid = nn.Module()
        self.mid.block_1 = ResBlock(block_in, block_in)
        self.mid.attn_1 = attention_pair(block_in)
        self.mid.block_2 = ResBlock(block_in, block_in)
        self.norm_out = FrameNorm(block_in)
        self.conv_out = factorized_conv(block_in, cfg.z_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(self.patcher3d(x))
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    """Continuous latent ``[B, z_channels, T', H', W']`` -> pixels ``[B, 3, T, H, W]`` (about [-1, 1])."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        widths = [cfg.channels * m for m in cfg.channels_mult]
        num_levels = len(widths)
        block_in = widths[-1]
        self.conv_in = factorized_conv(cfg.z_channels, block_in)
        self.mid = nn.Module()
        self.mid.block_1 = ResBlock(block_in, block_in)
        self.mid.attn_1 = attention_pair(block_in)
        self.mid.block_2 = ResBlock(block_in, block_in)
        # Levels are built from the lowest resolution up but stored by resolution index (up[0] = full size), so
        # that the keys read decoder.up.{i} with i matching encoder.down.{i}.
        levels: list[nn.Module] = []
        for i in reversed(range(num_levels)):
            level = nn.Module()
            level.block = nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                level.block.append(ResBlock(block_in, widths[i]))
                block_in = widths[i]
            if i > 0:
                # Step r (0 = first up-sampling) restores time at steps 1..num_temporal_downs, i.e. one step later
                # than the encoder removed it; space is restored wherever time is, plus at the remaining
                # num_spatial_downs steps when space was down-sampled more often than time.
                r = num_levels - 1 - i
                temporal = 0 < r < cfg.num_temporal_downs + 1
                spatial = temporal or (r < cfg.num_spatial_downs and cfg.num_spatial_downs > cfg.num_temporal_downs)
                if spatial or temporal:  # never false for DV8x16x16; CV8x8x8's first step is an identity
                    level.upsample = Upsample(block_in, spatial=spatial, temporal=temporal)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = FrameNorm(block_in)
        out_ch = cfg.in_channels * cfg.patch_size**3
        self.conv_out = factorized_conv(block_in, out_ch)
        self.unpatcher3d = UnPatcher3D(cfg.patch_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.unpatcher3d(self.conv_out(swish(self.norm_out(h))))


class CausalVideoTokenizer(nn.Module):
    """The whole tokenizer: ``encoder``, ``quant_conv``, ``quantizer`` (FSQ), ``post_quant_conv``, ``decoder``.

    Args:
        cfg: network sizes; ``TokenizerConfig()`` is the released DV8x16x16.

    Its own ``state_dict`` is the layout of the released ``autoencoder.jit``; ``encoder_jit()`` and
    ``decoder_jit()`` return ``nn.Sequential`` views sharing these modules whose state dicts have the 148 / 181 keys
    of ``encoder.jit`` / ``decoder.jit`` (at the released sizes).
    """

    def __init__(self, cfg: TokenizerConfig | None = None) -> None:
        super().__init__()
        self.config = cfg if cfg is not None else TokenizerConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.quant_conv = CausalConv3d(self.config.z_channels, self.config.embedding_dim, kernel_size=1, padding=0)
        self.post_quant_conv = CausalConv3d(self.config.embedding_dim, self.config.z_channels, kernel_size=1, padding=0)
        self.quantizer = FSQuantizer(self.config.levels)

    def encoder_jit(self) -> nn.Sequential:
        """``encoder -> quant_conv -> quantizer``: pixels -> (indices int32, codes, dummy); keys of encoder.jit."""
        return nn.Sequential(
            OrderedDict([("encoder", self.encoder), ("quant_conv", self.quant_conv), ("quantizer", self.quantizer)])
        )

    def decoder_jit(self) -> nn.Sequential:
        """``inv_quant -> post_quant_conv -> decoder``: indices -> pixels; keys of decoder.jit."""
        inv_quant = InverseQuantizer(self.quantizer, self.post_quant_conv)
        return nn.Sequential(
            OrderedDict(
                [("inv_quant", inv_quant), ("post_quant_conv", self.post_quant_conv), ("decoder", self.decoder)]
            )
        )

    def encode(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One causal clip -> ``(indices [B, T', H', W'] int32, codes [B, 6, T', H', W'], dummy [B])``.

        Args:
            video: ``[B, 3, T, H, W]`` in [-1, 1], T = 1 + 8k, in the network's dtype and device.
        """
        return self.quantizer(self.quant_conv(self.encoder(video)))

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """``[B, T', H', W']`` integer indices -> ``[B, 3, 1 + 8(T' - 1), 16H', 16W']`` pixels (about [-1, 1])."""
        codes = self.quantizer.indices_to_codes(indices).to(self.post_quant_conv.conv3d.weight.dtype)
        return self.decoder(self.post_quant_conv(codes))

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Round trip ``video -> (reconstruction, dummy loss, indices)``, the output order of autoencoder.jit."""
        indices, codes, dummy = self.encode(video)
        return self.decoder(self.post_quant_conv(codes)), dummy, indices

    def load_released_state_dicts(
        self, encoder_sd: Mapping[str, torch.Tensor], decoder_sd: Mapping[str, torch.Tensor]
    ) -> None:
        """Load the ``state_dict()`` of ``encoder.jit`` and ``decoder.jit`` strictly (dtypes are converted)."""
        self.encoder_jit().load_state_dict(encoder_sd, strict=True)
        self.decoder_jit().load_state_dict(decoder_sd, strict=True)


def _indices_under(sd: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in sd if (m := pattern.match(k))})


def infer_config(encoder_sd: Mapping[str, torch.Tensor], decoder_sd: Mapping[str, torch.Tensor]) -> TokenizerConfig:
    """Read the network sizes off the released-format state dicts, so real and tiny folders load the same way.

    Args:
        encoder_sd: ``torch.jit.load("encoder.jit").state_dict()``.
        decoder_sd: ``torch.jit.load("decoder.jit").state_dict()``.

    Raises:
        ValueError: the keys do not look like a causal discrete video tokenizer.
    """
    try:
        conv_in = encoder_sd["encoder.conv_in.0.conv3d.weight"]  # [channels, 3·p³, 1, 3, 3]
        channels = int(conv_in.shape[0])
        patch_size = int(encoder_sd["encoder.patcher3d.patch_size_buffer"].reshape(-1)[0])
        in_channels = int(conv_in.shape[1]) // patch_size**3
        levels = _indices_under(encoder_sd, "encoder.down.")
        mult = [encoder_sd[f"encoder.down.{i}.block.0.conv1.0.conv3d.weight"].shape[0] // channels for i in levels]
        num_res_blocks = len(_indices_under(encoder_sd, "encoder.down.0.block."))
        z_channels = int(encoder_sd["encoder.conv_out.1.conv3d.weight"].shape[0])
        fsq_levels = tuple(int(v) for v in encoder_sd["quantizer._levels"].tolist())
    except KeyError as err:
        raise ValueError(f"not a discrete video tokenizer state dict: missing key {err}") from None
    n_spatial = sum(f"encoder.down.{i}.downsample.conv1.conv3d.weight" in encoder_sd for i in levels)
    n_temporal = sum(f"encoder.down.{i}.downsample.conv2.conv3d.weight" in encoder_sd for i in levels)
    cfg = TokenizerConfig(
        channels=channels,
        channels_mult=tuple(mult),
        num_res_blocks=num_res_blocks,
        in_channels=in_channels,
        z_channels=z_channels,
        levels=fsq_levels,
        patch_size=patch_size,
        spatial_compression=patch_size * 2**n_spatial,
        temporal_compression=patch_size * 2**n_temporal,
    )
    dec_blocks = len(_indices_under(decoder_sd, "decoder.up.0.block."))
    if dec_blocks != num_res_blocks + 1:
        raise ValueError(
            f"decoder has {dec_blocks} residual blocks per level but the encoder has {num_res_blocks}; "
            "encoder.jit and decoder.jit are from different tokenizers"
        )
    return cfg
