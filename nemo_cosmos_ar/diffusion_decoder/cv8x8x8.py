"""The decoder of the Cosmos-Tokenize1-CV8x8x8-720p continuous video tokenizer: latents -> frames.

The release ships it as TorchScript (``decoder.jit``: ``Sequential(post_quant_conv, decoder)``) with the latent
statistics in ``mean_std.pt`` (a ``(mean, std)`` pair, ``16 x frames`` values each). cosmos-predict1 decodes with
``decoder((latent / sigma_data) * std + mean)`` chunk by chunk (``diffusion/module/pretrained_vae.py``
``BasePretrainedVideoTokenizer`` / ``JITVAE``); the ``/ sigma_data`` belongs to the diffusion model and is applied
by the pipeline.

The network is the causal "factorized" decoder of the DV8x16x16 tokenizer with ``spatial_compression=8``
(``tokenizer/networks/configs.py`` ``continuous_video_8x8x8_720p``: channels 128, mult [2, 4, 4], 2 residual
blocks, z 16, latent 16, Haar patch 4). With one spatial and one temporal up-sampling step, NVIDIA's rule puts both
at the middle level and none at the lowest (whose ``upsample`` is an identity without weights). This module builds
it from the DV tokenizer's blocks, for the eager backend and for writing random-weight ``decoder.jit`` fixtures.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import torch
from torch import nn

from nemo_cosmos_ar.tokenizer.modules import CausalConv3d
from nemo_cosmos_ar.tokenizer.networks import Decoder, TokenizerConfig

DECODER_FILE = "decoder.jit"
MEAN_STD_FILE = "mean_std.pt"
CV_BACKENDS = ("jit", "eager")


@dataclass(kw_only=True)
class CVConfig:
    """Sizes of the continuous tokenizer's decoder. Defaults are the released CV8x8x8-720p."""

    channels: int = 128
    channels_mult: tuple[int, ...] = (2, 4, 4)
    num_res_blocks: int = 2
    out_channels: int = 3
    z_channels: int = 16
    latent_channels: int = 16
    patch_size: int = 4
    spatial_compression: int = 8
    temporal_compression: int = 8

    def __post_init__(self) -> None:
        self.channels_mult = tuple(self.channels_mult)
        for name in ("patch_size", "spatial_compression", "temporal_compression"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"CVConfig.{name} must be a power of 2, got {value}")
        levels = len(self.channels_mult)
        if not (0 <= self.num_spatial_ups < levels and 0 <= self.num_temporal_ups < levels):
            raise ValueError("CVConfig: more up-sampling steps than levels in channels_mult")

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels per level (what the weights determine; ``channels`` alone is not recoverable from them)."""
        return tuple(self.channels * m for m in self.channels_mult)

    @property
    def num_spatial_ups(self) -> int:
        return int(math.log2(self.spatial_compression)) - int(math.log2(self.patch_size))

    @property
    def num_temporal_ups(self) -> int:
        return int(math.log2(self.temporal_compression)) - int(math.log2(self.patch_size))

    def pixel_frames(self, latent_frames: int) -> int:
        return 1 + (latent_frames - 1) * self.temporal_compression


def tiny_cv_config() -> CVConfig:
    """A small decoder with the released topology and compression, for CPU tests."""
    return CVConfig(channels=8, channels_mult=(1, 2, 2), num_res_blocks=1, z_channels=8)


CV_PRESETS = {"cv8x8x8": CVConfig, "tiny": tiny_cv_config}


def continuous_decoder(cfg: CVConfig) -> nn.Module:
    """``[B, z, T, h, w]`` -> ``[B, 3, 1 + 8(T - 1), 8h, 8w]``: the DV8x16x16 tokenizer's decoder network
    (``tokenizer.networks.Decoder``: causal factorised convolutions, the same up-sampling rule, Haar un-patcher)
    with CV8x8x8's sizes; its state dict has the same ``decoder.*`` layout."""
    return Decoder(
        TokenizerConfig(
            channels=cfg.channels,
            channels_mult=cfg.channels_mult,
            num_res_blocks=cfg.num_res_blocks,
            in_channels=cfg.out_channels,
            z_channels=cfg.z_channels,
            patch_size=cfg.patch_size,
            spatial_compression=cfg.spatial_compression,
            temporal_compression=cfg.temporal_compression,
        )
    )


class ContinuousVideoDecoder(nn.Module):
    """``post_quant_conv`` (latent -> z, 1x1x1) then ``decoder``; its state dict is ``decoder.jit``'s layout."""

    def __init__(self, cfg: CVConfig | None = None) -> None:
        super().__init__()
        self.config = cfg if cfg is not None else CVConfig()
        self.post_quant_conv = CausalConv3d(self.config.latent_channels, self.config.z_channels, 1, padding=0)
        self.decoder = continuous_decoder(self.config)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(latent))


def _indices(sd: dict, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in sd if (m := pattern.match(k))})


def infer_cv_config(sd: dict[str, torch.Tensor]) -> CVConfig:
    """Read the decoder sizes off a ``decoder.jit`` state dict (released or fixture).

    The per-level widths are what the weights fix; they are written as ``channels = gcd(widths)`` times a
    multiplier (256 x (1, 2, 2) for the release's 128 x (2, 4, 4): the same network).
    """
    try:
        latent, z = sd["post_quant_conv.conv3d.weight"].shape[1], sd["post_quant_conv.conv3d.weight"].shape[0]
        levels = _indices(sd, "decoder.up.")
        widths = [int(sd[f"decoder.up.{i}.block.0.conv1.0.conv3d.weight"].shape[0]) for i in levels]
        out_ch = int(sd["decoder.conv_out.1.conv3d.weight"].shape[0])
    except KeyError as err:
        raise ValueError(f"not a continuous video tokenizer decoder: missing key {err}") from None
    patch = round((out_ch / 3) ** (1 / 3))
    base = reduce(math.gcd, widths)
    n_sp = sum(f"decoder.up.{i}.upsample.conv2.conv3d.weight" in sd for i in levels)
    n_t = sum(f"decoder.up.{i}.upsample.conv1.conv3d.weight" in sd for i in levels)
    return CVConfig(
        channels=base,
        channels_mult=tuple(w // base for w in widths),
        num_res_blocks=len(_indices(sd, "decoder.up.0.block.")) - 1,
        z_channels=int(z),
        latent_channels=int(latent),
        patch_size=patch,
        spatial_compression=patch * 2**n_sp,
        temporal_compression=patch * 2**n_t,
    )


def load_mean_std(path: Path, latent_channels: int, latent_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` as ``[1, C, latent_frames, 1, 1]`` float32: the first ``latent_frames`` per-frame stats."""
    try:
        pair = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: a CV8x8x8 folder needs {MEAN_STD_FILE} next to {DECODER_FILE}"
        ) from None
    except Exception as err:  # noqa: BLE001 - unpickling errors have many types
        raise ValueError(
            f"{path} is not a readable (mean, std) pair ({type(err).__name__}); it is read with weights_only=True"
        ) from None  # (torch's own message spans lines)
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(t, torch.Tensor) for t in pair)):
        raise ValueError(f"{path} must hold a (mean, std) pair of tensors, got {type(pair).__name__}")
    out = []
    for name, t in zip(("mean", "std"), pair):
        if t.numel() % latent_channels or t.numel() // latent_channels < latent_frames:
            raise ValueError(
                f"{path}: {name} has {t.numel()} values; expected {latent_channels} channels x at "
                f"least {latent_frames} latent frames"
            )
        out.append(t.float().reshape(latent_channels, -1)[:, :latent_frames].reshape(1, latent_channels, -1, 1, 1))
    return out[0], out[1]


class CVTokenizerDecoder:
    """Latents in the diffusion model's space -> pixels, as cosmos-predict1 decodes them.

    Args:
        network: the TorchScript ``decoder.jit`` module or a ``ContinuousVideoDecoder``.
        config: sizes (``infer_cv_config``).
        mean, std: ``[1, C, chunk, 1, 1]`` latent statistics.
        device: where decoding runs.
        dtype: the network's dtype (a TorchScript file runs only in the dtype it was traced in).
        latent_chunk: latent frames per independently decoded chunk (8: the decoder's 57-frame chunk).
    """

    def __init__(self, network, config: CVConfig, mean, std, device, dtype, latent_chunk: int) -> None:
        self.network, self.config, self.dtype = network, config, dtype
        self.device = torch.device(device)
        self.mean, self.std = mean.to(self.device), std.to(self.device)
        self.latent_chunk = latent_chunk

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, sigma_data: float = 0.5) -> torch.Tensor:
        """``[B, C, t, h, w]`` latents -> ``[B, 3, frames, 8h, 8w]`` float32, unclamped: chunks of ``latent_chunk``
        latent frames decoded independently (``1 + 8 (chunk - 1)`` frames each), the last one possibly shorter.

        A shorter chunk is how the pipeline skips work: the decoder is causal in time, so the first n latent frames
        of a chunk decode to its first ``1 + 8 (n - 1)`` frames whatever follows (equal up to the convolutions'
        rounding, which depends on the shape). The un-normalisation ``latent / sigma_data * std + mean`` runs in the
        latent's dtype (bf16 in NVIDIA's pipeline), the network in its own dtype.
        """
        b, c, t, h, w = latent.shape
        if c != self.config.latent_channels or t < 1:
            raise ValueError(f"latent {tuple(latent.shape)} is not [B, {self.config.latent_channels}, t >= 1, h, w]")
        lat = latent.to(self.device)
        pieces = []
        for start in range(0, t, self.latent_chunk):
            part = lat[:, :, start : start + self.latent_chunk]
            n = part.shape[2]
            part = (part / sigma_data) * self.std[:, :, :n].to(lat.dtype) + self.mean[:, :, :n].to(lat.dtype)
            pieces.append(torch.cat([self.network(part[i : i + 1].to(self.dtype)).float() for i in range(b)]))
        return torch.cat(pieces, dim=2)


def traced_dtype(module: nn.Module) -> torch.dtype:
    return next(p.dtype for p in module.parameters() if p.is_floating_point())


def load_cv_decoder(
    folder: str | Path,
    backend: str = "jit",
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    latent_chunk: int = 8,
) -> CVTokenizerDecoder:
    """Load a Cosmos-Tokenize1-CV8x8x8-720p folder (``decoder.jit`` + ``mean_std.pt``).

    Args:
        folder: the tokenizer folder.
        backend: ``"jit"`` (the TorchScript file, its traced dtype only; NVIDIA's path) or ``"eager"`` (this
            module's network with the file's weights, any dtype).
        device: where to decode.
        dtype: eager compute dtype; None = the file's. The jit backend refuses any other than the file's.
        latent_chunk: latent frames per decoded chunk.

    Raises:
        FileNotFoundError: missing folder or file. ValueError: unreadable or unexpected files, a bad backend/dtype.
    """
    if backend not in CV_BACKENDS:
        raise ValueError(f"unknown CV8x8x8 backend {backend!r}; choose one of {CV_BACKENDS}")
    root = Path(folder)
    path = root / DECODER_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: download Cosmos-Tokenize1-CV8x8x8-720p to {root} (decoder.jit, "
            "mean_std.pt) or write a test folder with "
            "fixtures.write_random_cv_tokenizer()"
        )
    try:
        jit = torch.jit.load(str(path), map_location=device if backend == "jit" else "cpu")
    except RuntimeError as err:
        raise ValueError(f"{path} is not a readable TorchScript file ({type(err).__name__})") from None
    sd = jit.state_dict()
    cfg = infer_cv_config(sd)
    mean, std = load_mean_std(root / MEAN_STD_FILE, cfg.latent_channels, latent_chunk)
    stored = traced_dtype(jit)
    if backend == "jit":
        if dtype is not None and dtype != stored:
            raise ValueError(
                f"{path} was traced in {stored} and runs only in it; pass dtype=None or use the eager backend"
            )
        return CVTokenizerDecoder(jit.eval(), cfg, mean, std, device, stored, latent_chunk)
    net = ContinuousVideoDecoder(cfg)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise ValueError(f"{path}: weights do not fit the CV decoder network: {first}") from None
    del jit
    run_dtype = dtype or stored
    net = net.to(device=device, dtype=run_dtype).eval().requires_grad_(False)
    return CVTokenizerDecoder(net, cfg, mean, std, device, run_dtype, latent_chunk)
