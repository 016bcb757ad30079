"""Typed configs of the diffusion decoder: the DiT's sizes (presets ``"7b"`` and ``"tiny"``) and the sampler.

Where the numbers come from (cosmos-predict1 at the revision in the reference digest, §6.4):

* DiT: ``diffusion/config/base/net.py`` ``FADITV2Config`` (28 blocks, 4096 channels, 32 heads, "FA-CA-MLP",
  patch 1x2x2, rope3d, adaLN-LoRA 256, affine-embedding RMSNorm, max 240x240x128) overridden by
  ``autoregressive/diffusion_decoder/config/inference/cosmos_diffusiondecoder_7b.py`` (experiment
  ``DD_FT_7Bv1_003_002_tokenizer888_spatch2_discrete_cond_on_token``: RoPE h/w extrapolation 1.5, token conditioning
  with ``nn.Embedding(codebook size, 32)``, no sigma conditioning) and ``network.py`` ``build_patch_embed`` (input channels
  16 latent + 32 token embedding + 1 padding mask).
* Sampler: ``autoregressive/configs/inference/inference_config.py`` ``DiffusionDecoderSamplingConfig`` L66-75
  (guidance 1.8, num_steps 15, overlap 2, dd_train_num_video_frames 57, fps 24; its docstring's "0.8" and "35" are
  stale), ``autoregressive/diffusion_decoder/model.py`` L84 ``EDMEulerScheduler(sigma_max=80, sigma_min=0.02,
  sigma_data=0.5)`` with diffusers' defaults (Karras schedule, rho 7, epsilon parameterisation, final sigma 0),
  ``sigma_data`` 0.5 from ``diffusion/config/base/model.py`` L28, and the guidance formula at ``model.py`` L141.
"""

from __future__ import annotations

from dataclasses import dataclass

from nemo_cosmos_ar.tokenizer.fsq import CODEBOOK_SIZE

# Folder names of the released checkpoints (cosmos-predict1's checkpoints/ layout).
DECODER_FOLDER = "Cosmos-Predict1-7B-Decoder-DV8x16x16ToCV8x8x8-720p"
CV_TOKENIZER_FOLDER = "Cosmos-Tokenize1-CV8x8x8-720p"


@dataclass(kw_only=True)
class DiTConfig:
    """Sizes of the token-conditioned video DiT. Defaults are the released 7B decoder.

    Attributes:
        latent_channels: channels of the CV8x8x8 latent (input and output of the denoiser).
        model_channels: transformer width.
        num_blocks: transformer blocks, each self-attention, cross-attention and MLP with their own adaLN.
        num_heads: attention heads (head dim = model_channels / num_heads).
        mlp_ratio: MLP hidden width / model_channels (GELU MLP, no gating).
        patch_spatial: patch size in H and W.
        patch_temporal: patch size in T.
        context_dim: width of the cross-attention context (T5-XXL embeddings).
        adaln_lora_dim: rank of the adaLN-LoRA modulation.
        max_img_h, max_img_w, max_frames: largest latent grid the RoPE table covers (before patching).
        rope_extrapolation: NTK extrapolation ratios ``(t, h, w)`` of the 3D RoPE.
        base_fps: frame rate at which temporal RoPE positions are plain frame indices.
        token_vocab_size: DV8x16x16 codebook size (rows of the token embedding).
        token_dim: channels of the token embedding concatenated to the latent.
    """

    latent_channels: int = 16
    model_channels: int = 4096
    num_blocks: int = 28
    num_heads: int = 32
    mlp_ratio: float = 4.0
    patch_spatial: int = 2
    patch_temporal: int = 1
    context_dim: int = 1024
    adaln_lora_dim: int = 256
    max_img_h: int = 240
    max_img_w: int = 240
    max_frames: int = 128
    rope_extrapolation: tuple[float, float, float] = (1.0, 1.5, 1.5)
    base_fps: int = 24
    token_vocab_size: int = CODEBOOK_SIZE  # the DV8x16x16 codebook the tokens come from
    token_dim: int = 32

    def __post_init__(self) -> None:
        self.rope_extrapolation = tuple(float(r) for r in self.rope_extrapolation)
        if self.model_channels % self.num_heads:
            raise ValueError(
                f"DiTConfig: model_channels {self.model_channels} is not divisible by num_heads {self.num_heads}"
            )
        # The 3D RoPE splits the head dim into h, w (head_dim // 6 * 2 each) and t; the NTK factor divides by
        # dim_h - 2, so the head dim must leave dim_h >= 4.
        if self.head_dim < 12 or self.head_dim % 2:
            raise ValueError(f"DiTConfig: head dim {self.head_dim} must be even and >= 12 for the 3D RoPE")
        if self.max_img_h % self.patch_spatial or self.max_img_w % self.patch_spatial:
            raise ValueError("DiTConfig: max_img_h and max_img_w must be multiples of patch_spatial")

    @property
    def head_dim(self) -> int:
        return self.model_channels // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.model_channels * self.mlp_ratio)

    @property
    def patch_volume(self) -> int:
        return self.patch_spatial * self.patch_spatial * self.patch_temporal

    @property
    def in_features(self) -> int:
        """Width of one patch fed to ``x_embedder``: (latent + token embedding + padding mask) x patch volume."""
        return (self.latent_channels + self.token_dim + 1) * self.patch_volume

    @property
    def rope_lengths(self) -> tuple[int, int, int]:
        """``(len_t, len_h, len_w)``: positions the RoPE table covers, in patches."""
        return (
            self.max_frames // self.patch_temporal,
            self.max_img_h // self.patch_spatial,
            self.max_img_w // self.patch_spatial,
        )


def tiny_dit_config() -> DiTConfig:
    """A 0.7M-parameter DiT (most of it the codebook-sized token embedding) with the released topology."""
    return DiTConfig(
        model_channels=64,
        num_blocks=2,
        num_heads=4,
        context_dim=32,
        adaln_lora_dim=16,
        max_img_h=64,
        max_img_w=64,
        max_frames=16,
        token_dim=8,
    )


DIT_PRESETS = {"7b": DiTConfig, "tiny": tiny_dit_config}


def get_dit_config(preset: str) -> DiTConfig:
    """A fresh ``DiTConfig`` for ``preset`` (``"7b"`` = released, ``"tiny"`` = CPU tests)."""
    if preset not in DIT_PRESETS:
        raise KeyError(f"unknown diffusion decoder preset {preset!r}; choose one of {sorted(DIT_PRESETS)}")
    return DIT_PRESETS[preset]()


BLENDS = ("aligned", "nvidia")


@dataclass(kw_only=True)
class SamplerConfig:
    """How the decoder samples. Defaults are cosmos-predict1's (see the module docstring for the sources).

    Attributes:
        num_steps: Euler steps (network evaluations per step: 2, conditional and unconditional).
        guidance: classifier-free guidance weight w in ``cond + w * (cond - uncond)``.
        sigma_min, sigma_max, rho: the Karras schedule ``(s_max^(1/rho) + i/(n-1) (s_min^(1/rho) -
            s_max^(1/rho)))^rho``, followed by a final sigma of 0.
        sigma_data: EDM data standard deviation (preconditioning and latent scaling).
        chunk_frames: pixel frames of one chunk, the length the decoder was trained on (57 -> 8 latent frames).
        overlap: latent (token) frames shared by consecutive chunks.
        blend: how decoded chunks are joined. ``"aligned"``: cross-fade over the pixel frames the chunks really
            share (``temporal_compression * (overlap - 1) + 1`` = 9). ``"nvidia"``: cosmos-predict1's
            ``linear_blend_video_list(videos, overlap)``, which cross-fades only ``overlap`` (2) pixel frames and so
            shifts later chunks in time. Both give the same video when there is one chunk (every 33-frame output).
        fps: frame rate given to the temporal RoPE (24 = ``base_fps``: plain frame indices).
        batch_guidance: run the conditional and unconditional passes as one batch of 2 (same maths as NVIDIA's two
            calls; fewer kernel launches, more activation memory).
    """

    num_steps: int = 15
    guidance: float = 1.8
    sigma_min: float = 0.02
    sigma_max: float = 80.0
    rho: float = 7.0
    sigma_data: float = 0.5
    chunk_frames: int = 57
    overlap: int = 2
    blend: str = "aligned"
    fps: float = 24.0
    batch_guidance: bool = True

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise ValueError(f"SamplerConfig.num_steps must be >= 1, got {self.num_steps}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"SamplerConfig needs 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if self.blend not in BLENDS:
            raise ValueError(f"SamplerConfig.blend must be one of {BLENDS}, got {self.blend!r}")
        if self.overlap < 1:
            raise ValueError(f"SamplerConfig.overlap must be >= 1, got {self.overlap}")

    def chunk_latent_frames(self, temporal_compression: int = 8) -> int:
        """Latent frames per chunk: 1 + (57 - 1) / 8 = 8."""
        if (self.chunk_frames - 1) % temporal_compression:
            raise ValueError(f"SamplerConfig.chunk_frames {self.chunk_frames} is not 1 + {temporal_compression}k")
        latent = 1 + (self.chunk_frames - 1) // temporal_compression
        if self.overlap >= latent:
            raise ValueError(
                f"SamplerConfig.overlap {self.overlap} must be smaller than the {latent} latent frames of a chunk"
            )
        return latent
