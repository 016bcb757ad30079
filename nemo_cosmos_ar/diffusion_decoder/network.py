"""The token-conditioned video DiT of the 7B diffusion decoder (eager PyTorch; TransformerEngine optional).

What one forward does (cosmos-predict1 ``autoregressive/diffusion_decoder/network.py`` on top of
``diffusion/networks/general_dit.py`` and ``diffusion/module/{blocks,attention,position_embedding}.py``):

1. **Token conditioning.** The DV8x16x16 grid ``[B, T, H/16, W/16]`` goes through ``token_embedder``
   (``Embedding(codebook size, 32)``), is resized bilinearly to the latent's ``H/8 x W/8`` frame by frame, and is
   concatenated to the noisy latent along channels, followed by one all-zero padding-mask channel: 16 + 32 + 1 = 49.
2. **Patches.** 1x2x2 patches, flattened channel-major (``c t h w``), ``Linear(196 -> 4096)`` without bias.
3. **Time.** ``c_noise`` -> 4096 sinusoidal features (cos half first) -> ``linear_1`` (4096), SiLU, ``linear_2``
   (3 x 4096): the adaLN-LoRA term shared by every block. The features themselves, RMS-normalised
   (``affline_norm``), are the adaLN input.
4. **Blocks.** 28 x [self-attention with 3D RoPE, cross-attention to the T5 context, GELU MLP], each pre-normed by
   a parameter-free LayerNorm modulated as ``norm(x) * (1 + scale) + shift`` and gated: ``x + gate * f(.)``, with
   ``(shift, scale, gate) = Linear(Linear(SiLU(emb))) + lora``. Queries and keys are RMS-normalised per head.
5. **Output.** Modulated LayerNorm, ``Linear(4096 -> 64)``, un-patchified ``(p1 p2 t c)``: the EDM "epsilon"
   network output F, combined by the sampler as ``c_skip x + c_out F``.

Module and attribute names (``x_embedder.proj.1``, ``blocks.block{i}.blocks.{0,1,2}``, ``block.attn.to_q.0``,
``adaLN_modulation.1`` ...) are the released ``model.pt`` keys minus their ``net.`` prefix, so a checkpoint loads
with ``load_state_dict``. Precision follows NVIDIA's bf16 inference: norms, RoPE rotation and the time features
are computed in fp32 and rounded to the model dtype; the RoPE angles are computed in the dtype of the ``seq``
buffer, which a bf16 model holds in bf16, as NVIDIA's does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nemo_cosmos_ar.diffusion_decoder import epilogues, fp8, fused
from nemo_cosmos_ar.diffusion_decoder.attention import ATTENTION_BACKENDS, attend
from nemo_cosmos_ar.diffusion_decoder.config import DiTConfig

NORM_EPS = 1e-6


class RMSNorm(nn.Module):
    """RMS normalisation over the last dim with a learned gain, computed in fp32 (as TransformerEngine's)."""

    def __init__(self, dim: int, eps: float = NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused.rms_norm_eager(x, self.weight, self.eps)


def _norm(x: torch.Tensor) -> torch.Tensor:
    return fused.layer_norm_eager(x, NORM_EPS)


class RoPE3D(nn.Module):
    """3D rotary angles for a ``T x H x W`` patch grid (positions in (t, h, w) order, w fastest).

    The head dim splits into ``dim_h = dim_w = head_dim // 6 * 2`` and ``dim_t = head_dim - 2 dim_h``. Axis a with
    extrapolation ratio r uses ``theta_a = 10000 r^(dim_a / (dim_a - 2))`` and frequencies
    ``theta_a^(-2i / dim_a)``; temporal positions are ``frame * base_fps / fps``. The half vector
    ``[t-angles, h-angles, w-angles]`` is repeated twice to fill the head dim (pairs i and i + D/2).

    The buffer ``seq`` (``arange(max(len_t, len_h, len_w))``) is a released checkpoint key.
    """

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        len_t, len_h, len_w = cfg.rope_lengths
        self.register_buffer("seq", torch.arange(max(len_t, len_h, len_w), dtype=torch.float32))
        self.max_t, self.max_h, self.max_w = len_t, len_h, len_w
        self.dim_h = cfg.head_dim // 6 * 2
        self.dim_t = cfg.head_dim - 2 * self.dim_h
        ratio_t, ratio_h, ratio_w = cfg.rope_extrapolation
        self.theta_t = 10000.0 * ratio_t ** (self.dim_t / (self.dim_t - 2))
        self.theta_h = 10000.0 * ratio_h ** (self.dim_h / (self.dim_h - 2))
        self.theta_w = 10000.0 * ratio_w ** (self.dim_h / (self.dim_h - 2))
        self.base_fps = cfg.base_fps
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def angles(self, t: int, h: int, w: int, fps: float) -> torch.Tensor:
        """``[t*h*w, head_dim]`` fp32 angles, computed in the dtype of ``seq`` as NVIDIA's module is."""
        if t > self.max_t or h > self.max_h or w > self.max_w:
            raise ValueError(f"patch grid {t}x{h}x{w} exceeds the RoPE table {self.max_t}x{self.max_h}x{self.max_w}")
        seq = self.seq
        dtype, dev = seq.dtype, seq.device
        spatial = (torch.arange(0, self.dim_h, 2, device=dev)[: self.dim_h // 2].float() / self.dim_h).to(dtype)
        temporal = (torch.arange(0, self.dim_t, 2, device=dev)[: self.dim_t // 2].float() / self.dim_t).to(dtype)
        freq_h = 1.0 / (self.theta_h**spatial)
        freq_w = 1.0 / (self.theta_w**spatial)
        freq_t = 1.0 / (self.theta_t**temporal)
        pos_t = seq[:t] / torch.tensor([fps], dtype=dtype, device=dev) * self.base_fps
        ang_t, ang_h, ang_w = torch.outer(pos_t, freq_t), torch.outer(seq[:h], freq_h), torch.outer(seq[:w], freq_w)
        half = torch.cat(
            [
                ang_t[:, None, None, :].expand(t, h, w, -1),
                ang_h[None, :, None, :].expand(t, h, w, -1),
                ang_w[None, None, :, :].expand(t, h, w, -1),
            ],
            dim=-1,
        )
        return torch.cat([half, half], dim=-1).reshape(t * h * w, -1).float()

    def cos_sin(self, t: int, h: int, w: int, fps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached fp32 ``(cos, sin)`` of shape ``[t*h*w, 1, head_dim]``."""
        key = (t, h, w, float(fps), self.seq.dtype, self.seq.device)
        if key not in self._cache:
            ang = self.angles(t, h, w, fps)[:, None, :]
            self._cache = {key: (ang.cos(), ang.sin())}  # one grid per decode: keep only the latest
        return self._cache[key]


class Patchify(nn.Module):
    """``[B, C, T, H, W]`` -> ``[B, T/pt, H/p, W/p, C*pt*p*p]`` with features ordered ``(c, t, h, w)``."""

    def __init__(self, patch_spatial: int, patch_temporal: int) -> None:
        super().__init__()
        self.p, self.pt = patch_spatial, patch_temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        p, pt = self.p, self.pt
        if t % pt or h % p or w % p:
            raise ValueError(f"latent {t}x{h}x{w} is not a multiple of the patch {pt}x{p}x{p}")
        x = x.reshape(b, c, t // pt, pt, h // p, p, w // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
        return x.reshape(b, t // pt, h // p, w // p, c * pt * p * p)


class PatchEmbed(nn.Module):
    """Patches -> tokens: ``proj = Sequential(Patchify, Linear(in_features, model_channels, bias=False))``."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            Patchify(cfg.patch_spatial, cfg.patch_temporal),
            nn.Linear(cfg.in_features, cfg.model_channels, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class TimestepFeatures(nn.Module):
    """``[B]`` noise levels -> ``[B, D]`` sinusoids ``[cos(t w_i), sin(t w_i)]``, ``w_i = 10000^(-i / (D/2))``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        ang = t[:, None].float() * freqs[None, :]
        return torch.cat([ang.cos(), ang.sin()], dim=-1).to(t.dtype)


class TimestepEmbedding(nn.Module):
    """adaLN-LoRA time embedding: returns ``(features, linear_2(silu(linear_1(features))))``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(dim, dim, bias=False)
        self.linear_2 = nn.Linear(dim, 3 * dim, bias=False)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return feats, self.linear_2(F.silu(self.linear_1(feats)))


class Attention(nn.Module):
    """Multi-head attention with per-head RMS-normalised queries and keys (``qkv_norm="RRI"``), no biases.

    Args:
        dim: query width.
        context_dim: key/value input width for cross-attention; None for self-attention (RoPE applied).
        heads: number of heads.
        head_dim: width of one head.
    """

    def __init__(self, dim: int, context_dim: int | None, heads: int, head_dim: int) -> None:
        super().__init__()
        inner = heads * head_dim
        kv_in = dim if context_dim is None else context_dim
        self.is_self = context_dim is None
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Sequential(nn.Linear(dim, inner, bias=False), RMSNorm(head_dim))
        self.to_k = nn.Sequential(nn.Linear(kv_in, inner, bias=False), RMSNorm(head_dim))
        self.to_v = nn.Sequential(nn.Linear(kv_in, inner, bias=False), nn.Identity())
        self.to_out = nn.Sequential(nn.Linear(inner, dim, bias=False), nn.Identity())
        self.backend = "sdpa"
        self.kernels = "auto"  # the q/k norm and RoPE: one Triton kernel each on the GPU (fused.py), or "eager"
        self.cp = None  # self-attention under context parallelism: the keys and values of every rank's tokens
        self._ops: dict = {}  # a plain dict, so a TransformerEngine op adds no state-dict keys

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        return self.to_out[0](self.heads_out(x, context, rope))

    def heads_out(
        self, x: torch.Tensor, context: torch.Tensor | None, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        """The attention's output ``[B, S, heads * head_dim]``, before the output projection."""
        src = x if context is None else context
        shape = (self.heads, self.head_dim)
        rope = rope if self.is_self else None
        qn, kn = self.to_q[1], self.to_k[1]
        q = fused.qk_norm_rope(self.to_q[0](x).unflatten(-1, shape), qn.weight, qn.eps, rope, self.kernels)
        k = fused.qk_norm_rope(self.to_k[0](src).unflatten(-1, shape), kn.weight, kn.eps, rope, self.kernels)
        v = self.to_v[0](src).unflatten(-1, shape)
        if self.cp is not None and self.is_self:  # this rank's queries against every rank's keys and values
            k, v = self.cp.gather(k, 1), self.cp.gather(v, 1)
        return attend(q, k, v, self.backend, self._ops)


class VideoAttention(nn.Module):
    """Holder of ``attn`` (the released keys read ``block.attn.*``)."""

    def __init__(self, dim: int, context_dim: int | None, heads: int) -> None:
        super().__init__()
        self.attn = Attention(dim, context_dim, heads, dim // heads)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None, rope) -> torch.Tensor:
        return self.attn(x, context, rope)

    def forward_residual(self, h, context, rope, x, gate, epi: str, kernels: str) -> torch.Tensor:
        """``x + gate * forward(h)``, the output projection and the gated residual as one GEMM where
        ``epilogues.usable`` (x may be consumed: the sum can be written into its storage)."""
        return epilogues.gated_projection(
            self.attn.heads_out(h, context, rope), self.attn.to_out[0], x, gate, epi, kernels
        )


class FeedForward(nn.Module):
    """``layer2(gelu(layer1(x)))`` without biases (exact GELU); with FP8 GEMMs the GELU and the quantization of
    its output are one kernel."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layer1 = nn.Linear(dim, hidden, bias=False)
        self.layer2 = nn.Linear(hidden, dim, bias=False)
        self.kernels = "auto"

    def forward(self, x, context=None, rope=None) -> torch.Tensor:
        h = self.layer1(x)
        if isinstance(self.layer2, fp8.FP8Linear):
            return self.layer2(fp8.quantize_rows(h, self.kernels, gelu=True))
        return self.layer2(F.gelu(h))

    def forward_residual(self, h, context, rope, x, gate, epi: str, kernels: str) -> torch.Tensor:
        """``x + gate * forward(h)`` (bf16 layers), with the GELU in the first GEMM and the gated residual in the
        second where ``epilogues.usable`` (x may be consumed: the sum can be written into its storage)."""
        w1 = self.layer1.weight
        a = epilogues.linear_gelu(h, w1) if epilogues.usable(h, w1, epi) else F.gelu(self.layer1(h))
        return epilogues.gated_projection(a, self.layer2, x, gate, epi, kernels)


def _adaln(dim: int, lora: int, chunks: int) -> nn.Sequential:
    return nn.Sequential(nn.SiLU(), nn.Linear(dim, lora, bias=False), nn.Linear(lora, chunks * dim, bias=False))


class SubBlock(nn.Module):
    """One of "fa" (self-attention), "ca" (cross-attention), "mlp", with its adaLN modulation and gate."""

    def __init__(self, kind: str, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.model_channels
        self.kind = kind
        if kind == "mlp":
            self.block: nn.Module = FeedForward(d, cfg.mlp_hidden)
        else:
            self.block = VideoAttention(d, cfg.context_dim if kind == "ca" else None, cfg.num_heads)
        self.adaLN_modulation = _adaln(d, cfg.adaln_lora_dim, 3)
        self.kernels = "auto"  # the modulated norm and the gated residual: Triton on the GPU (fused.py), or "eager"
        self.gemm = "bf16"  # "fp8": the modulated norm's output quantized for FP8 projections (fp8.py)
        self.epilogues = "auto"  # bf16 GPU: the MLP's GELU and the gated residual in cuBLAS (epilogues.py), or "off"

    def forward(self, x, emb, lora, context, rope, context_rows: int | None = None) -> torch.Tensor:
        if self.kind == "ca" and context_rows is not None and context_rows < x.shape[0]:
            # Rows past context_rows have an all-zero context (the guidance's unconditional pass): their RMS-normed
            # keys and their values are 0, so the attention, to_out and gate * 0 leave x exactly as it is.
            if context_rows == 0:
                return x
            head = self._forward(x[:context_rows], emb[:context_rows], lora[:context_rows], context, rope)
            if head.data_ptr() == x.data_ptr():  # written in place by an epilogue: x holds every row already
                return x
            return torch.cat([head, x[context_rows:]])
        return self._forward(x, emb, lora, context, rope)

    def _forward(self, x, emb, lora, context, rope) -> torch.Tensor:
        if emb.shape[0] > 1 and emb.stride(0) == 0 and lora.stride(0) == 0:
            # one noise level for every row (the guided step): the modulation once, its rows views of one row
            mod = (self.adaLN_modulation(emb[:1]) + lora[:1]).expand(emb.shape[0], -1)
        else:
            mod = self.adaLN_modulation(emb) + lora
        shift, scale, gate = mod.unsqueeze(1).chunk(3, dim=-1)
        if self.gemm == "fp8":
            h = fp8.ln_modulate_quant(x, shift, scale, NORM_EPS, self.kernels)
        else:
            h = fused.ln_modulate(x, shift, scale, NORM_EPS, self.kernels)  # layer_norm(x) * (1 + scale) + shift
        context = context if self.kind == "ca" else None
        if self.gemm == "bf16" and self.epilogues != "off":  # x + gate * y, y's last GEMM writing it
            return self.block.forward_residual(h, context, rope, x, gate, self.epilogues, self.kernels)
        y = self.block(h, context, rope)
        return fused.gate_residual(x, y, gate, self.kernels)  # x + gate * y


class DiTBlock(nn.Module):
    """``blocks = [fa, ca, mlp]`` (NVIDIA's ``block_config="FA-CA-MLP"``)."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(SubBlock(kind, cfg) for kind in ("fa", "ca", "mlp"))

    def forward(self, x, emb, lora, context, rope, context_rows: int | None = None) -> torch.Tensor:
        for sub in self.blocks:
            x = sub(x, emb, lora, context, rope, context_rows)
        return x


class FinalLayer(nn.Module):
    """Modulated LayerNorm (shift, scale from adaLN + the first 2D of the LoRA term) and the output projection."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.model_channels
        self.linear = nn.Linear(d, cfg.patch_volume * cfg.latent_channels, bias=False)
        self.adaLN_modulation = _adaln(d, cfg.adaln_lora_dim, 2)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, lora: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        shift, scale = (self.adaLN_modulation(emb) + lora[:, : 2 * d]).unsqueeze(1).chunk(2, dim=-1)
        return self.linear(_norm(x) * (1 + scale) + shift)


class DiffusionDecoderDiT(nn.Module):
    """The denoiser network: ``(x_in, c_noise, context, tokens) -> F`` (see the module docstring).

    Args:
        cfg: sizes; ``DiTConfig()`` is the released 7B decoder.
    """

    def __init__(self, cfg: DiTConfig | None = None) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else DiTConfig()
        self.config = cfg
        self.x_embedder = PatchEmbed(cfg)
        self.token_embedder = nn.Embedding(cfg.token_vocab_size, cfg.token_dim)
        self.pos_embedder = RoPE3D(cfg)
        self.t_embedder = nn.Sequential(TimestepFeatures(cfg.model_channels), TimestepEmbedding(cfg.model_channels))
        self.affline_norm = RMSNorm(cfg.model_channels)  # NVIDIA's spelling, kept for the checkpoint keys
        self.blocks = nn.ModuleDict({f"block{i}": DiTBlock(cfg) for i in range(cfg.num_blocks)})
        self.final_layer = FinalLayer(cfg)
        self.cp = None  # parallel.ContextParallel, set_context_parallel

    def set_attention_backend(self, backend: str) -> None:
        """``"sdpa"`` (torch scaled_dot_product_attention: cuDNN/flash on GPU), ``"fa4"`` (FlashAttention-4) or
        ``"te"`` (TransformerEngine); ``attention.resolve`` turns ``"auto"`` into one of them."""
        if backend not in ATTENTION_BACKENDS:
            raise ValueError(f"unknown attention backend {backend!r}; choose one of {ATTENTION_BACKENDS}")
        for m in self.modules():
            if isinstance(m, Attention):
                m.backend = backend

    def set_context_parallel(self, cp) -> None:
        """Cut each forward's token sequence over the ranks of ``cp`` (``parallel.ContextParallel``; None: off).
        Every rank computes its slice of the tokens through every block (the self-attention gathers all keys and
        values), and the output is gathered at the end, so each rank returns the whole output."""
        self.cp = cp
        for m in self.modules():
            if isinstance(m, Attention):
                m.cp = cp

    def set_kernels(self, kernels: str) -> None:
        """``"auto"`` (the elementwise work as Triton kernels on the GPU when Triton is there, ``fused.py``) or
        ``"eager"`` (the plain torch ops everywhere)."""
        if kernels not in fused.KERNELS:
            raise ValueError(f"unknown DiT kernels {kernels!r}; choose one of {fused.KERNELS}")
        for m in self.modules():
            if isinstance(m, (Attention, SubBlock, FeedForward, fp8.FP8Linear)):
                m.kernels = kernels

    def set_epilogues(self, mode: str) -> None:
        """``"auto"`` (bf16 GEMMs on the GPU: the MLP's GELU and each sub-block's gated residual computed by the
        cuBLAS product before them, ``epilogues.py``) or ``"off"`` (separate passes, ``fused.py``)."""
        if mode not in epilogues.EPILOGUES:
            raise ValueError(f"unknown DiT epilogues {mode!r}; choose one of {epilogues.EPILOGUES}")
        for m in self.modules():
            if isinstance(m, SubBlock):
                m.epilogues = mode

    def set_gemm(self, gemm: str) -> None:
        """``"bf16"`` (the model dtype's GEMMs) or ``"fp8"``: the blocks' token-stream projections (self-attention
        q/k/v/out, cross-attention q/out, both MLP layers) become e4m3 ``FP8Linear`` modules (``fp8.py``; the
        output changes). One way: the model-dtype weights of those projections are dropped, so load the
        checkpoint first and do not save the state dict afterwards."""
        if gemm not in fp8.GEMMS:
            raise ValueError(f"unknown DiT GEMM precision {gemm!r}; choose one of {fp8.GEMMS}")
        subs = [m for m in self.modules() if isinstance(m, SubBlock)]
        if gemm == "bf16":
            if any(s.gemm == "fp8" for s in subs):
                raise ValueError("this DiT already runs FP8 GEMMs; its bf16 weights are gone (load it again)")
            return
        kernels = subs[0].kernels if subs else "auto"
        for sub in subs:
            if sub.kind == "mlp":
                names = ["block.layer1", "block.layer2"]
            else:  # the cross-attention's keys and values read the 512-row context: they stay in the model dtype
                qkv = ("to_q", "to_k", "to_v") if sub.kind == "fa" else ("to_q",)
                names = [f"block.attn.{n}.0" for n in (*qkv, "to_out")]
            fp8.convert_linears(sub, names)
            sub.gemm = "fp8"
        self.set_kernels(kernels)

    def token_condition(self, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``[B, T, h, w]`` token ids -> ``[B, token_dim, T, H, W]`` embeddings resized bilinearly to ``size``.

        The resize runs in fp32 with torchvision's tensor ``resize`` semantics (half-pixel centres, antialiased
        kernel, which for up-sampling is plain bilinear) and is rounded to the embedding dtype.
        """
        b, t, h, w = tokens.shape
        emb = self.token_embedder(tokens)  # [B, T, h, w, E]
        flat = emb.permute(0, 1, 4, 2, 3).reshape(b * t, -1, h, w)
        flat = F.interpolate(flat.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        return flat.to(emb.dtype).reshape(b, t, -1, *size).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        tokens: torch.Tensor,
        fps: float = 24.0,
        context_rows: int | None = None,
    ) -> torch.Tensor:
        """One denoiser evaluation.

        Args:
            x: ``[B, C, T, H, W]`` latent already scaled by ``c_in``, in the model dtype.
            timesteps: ``[B]`` (or one value) ``c_noise = log(sigma) / 4``, in the model dtype.
            context: ``[B, M, context_dim]`` cross-attention context (T5 embeddings; zeros for unconditional).
            tokens: ``[B, T, H', W']`` int64 DV8x16x16 ids (all 0 for unconditional).
            fps: frame rate of the temporal RoPE positions.
            context_rows: the batch rows ``[0, context_rows)`` have a context, the rest an all-zero one (the
                guidance's unconditional pass, whose cross-attention is then skipped: exactly zero). None: every
                row is computed as given.

        Returns:
            ``[B, C, T, H, W]`` network output F in the model dtype.
        """
        b, c, t, h, w = x.shape
        cfg = self.config
        if tokens.shape[:2] != (b, t):
            raise ValueError(f"tokens {tuple(tokens.shape)} do not match the latent {tuple(x.shape)} (B, T)")
        cond = self.token_condition(tokens, (h, w)).to(x.dtype)
        x = torch.cat([x, cond, x.new_zeros(b, 1, t, h, w)], dim=1)  # padding mask: all zeros at inference
        x = self.x_embedder(x)
        tp, hp, wp = x.shape[1:4]
        x = x.flatten(1, 3)  # [B, S, D], S in (t, h, w) order
        rope = self.pos_embedder.cos_sin(tp, hp, wp, fps)
        if self.cp is not None:  # this rank's tokens and their positions
            lo, hi = self.cp.span(x.shape[1])
            x, rope = x[:, lo:hi], (rope[0][lo:hi], rope[1][lo:hi])
        timesteps = timesteps.to(x.device).reshape(-1)  # the sampler's c_noise is a CPU scalar
        emb, lora = self.t_embedder(timesteps)
        emb = self.affline_norm(emb)
        if timesteps.numel() == 1:  # one noise level (the guided step): rows that are views of one, so the
            emb, lora = emb.expand(b, -1), lora.expand(b, -1)  # sub-blocks modulate once and share the gate
        context = context.to(x.dtype)[:context_rows]  # (a slice of None is the whole)
        for block in self.blocks.values():
            x = block(x, emb, lora, context, rope, context_rows)
        x = self.final_layer(x, emb, lora)
        if self.cp is not None:
            x = self.cp.gather(x, 1)
        p, pt = cfg.patch_spatial, cfg.patch_temporal
        x = x.reshape(b, tp, hp, wp, p, p, pt, c).permute(0, 7, 1, 6, 2, 4, 3, 5)
        return x.reshape(b, c, tp * pt, hp * p, wp * p)
