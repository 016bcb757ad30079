"""EDM Euler sampling with classifier-free guidance, and the chunking of token grids longer than one chunk.

The sampler is what cosmos-predict1 gets from diffusers' ``EDMEulerScheduler(sigma_max=80, sigma_min=0.02,
sigma_data=0.5)`` driven by ``LatentDiffusionDecoderModel.generate_samples_from_batch``
(``autoregressive/diffusion_decoder/model.py`` L84, L120-145), written out as formulas:

* sigmas: Karras ``sigma_i = (s_max^(1/rho) + i/(n-1) (s_min^(1/rho) - s_max^(1/rho)))^rho`` for i < n (computed in
  float64, stored as float32), then ``sigma_n = 0``;
* start: ``x = N(0, I) * sqrt(sigma_max^2 + 1)`` (the scheduler's ``init_noise_sigma``, drawn on the CPU);
* step i: ``x_in = x * c_in``, ``F = net(x_in, c_noise)`` for the conditional and the unconditional inputs,
  ``F = F_c + w (F_c - F_u)``, ``D = c_skip x + c_out F``, ``x <- x + (x - D) / sigma_i * (sigma_{i+1} - sigma_i)``
  with ``c_in = 1/sqrt(s^2 + sd^2)``, ``c_skip = sd^2 / (s^2 + sd^2)``, ``c_out = s sd / sqrt(s^2 + sd^2)``,
  ``c_noise = log(s) / 4``. The state is kept in the network dtype between steps and each step is computed in fp32
  (but for ``c_out F``, left in the network dtype), as the scheduler does.

Chunking (``autoregressive/diffusion_decoder/{inference,utils}.py``): the token grid is cut along time into chunks
of ``1 + (57 - 1) / 8 = 8`` latent frames starting every ``8 - overlap`` frames; the last chunk is completed by
reflecting its frames. Each chunk is sampled and decoded to 57 pixel frames, and the decoded chunks are joined by a
linear cross-fade (see ``SamplerConfig.blend``) and cut to ``1 + 8 (T - 1)`` frames.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nemo_cosmos_ar.diffusion_decoder.config import SamplerConfig


def karras_sigmas(cfg: SamplerConfig) -> torch.Tensor:
    """``[num_steps + 1]`` float32 noise levels, from ``sigma_max`` down to ``sigma_min``, then 0."""
    ramp = torch.linspace(0, 1, cfg.num_steps, dtype=torch.float64)
    hi, lo = cfg.sigma_max ** (1 / cfg.rho), cfg.sigma_min ** (1 / cfg.rho)
    sigmas = ((hi + ramp * (lo - hi)) ** cfg.rho).float()
    return torch.cat([sigmas, torch.zeros(1)])


def noise_conditioning(sigma: torch.Tensor) -> torch.Tensor:
    """``c_noise = log(sigma) / 4``: the network's "timestep" input."""
    return 0.25 * torch.log(sigma)


def preconditioning(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EDM ``(c_skip, c_out, c_in)`` at noise level ``sigma`` (epsilon parameterisation)."""
    c_skip = sigma_data**2 / (sigma**2 + sigma_data**2)
    c_out = sigma * sigma_data / (sigma**2 + sigma_data**2) ** 0.5
    c_in = 1 / (sigma**2 + sigma_data**2) ** 0.5
    return c_skip, c_out, c_in


def initial_noise_std(cfg: SamplerConfig) -> float:
    """``sqrt(sigma_max^2 + 1)``: the scale diffusers' EDM Euler scheduler gives the starting noise."""
    return (cfg.sigma_max**2 + 1) ** 0.5


def guide(cond: torch.Tensor, uncond: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance as cosmos-predict1 writes it: ``cond + w * (cond - uncond)``."""
    return cond + guidance * (cond - uncond)


def euler_step(
    x: torch.Tensor, out: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor, sigma_data: float
) -> torch.Tensor:
    """One Euler step of the probability-flow ODE from ``sigma`` to ``sigma_next``, returned in ``out``'s dtype.

    Rounding as diffusers' scheduler: the state is upcast to fp32, ``c_out * out`` stays in ``out``'s dtype (a 0-dim
    fp32 factor does not promote a bf16 tensor), the rest is fp32.
    """
    xf = x.float()
    c_skip, c_out, _ = preconditioning(sigma, sigma_data)
    denoised = c_skip * xf + c_out * out
    return (xf + (xf - denoised) / sigma * (sigma_next - sigma)).to(out.dtype)


DenoisePair = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def edm_sample(
    denoise_pair: DenoisePair,
    noise: torch.Tensor,
    cfg: SamplerConfig,
    dtype: torch.dtype,
    on_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Run the sampler.

    Args:
        denoise_pair: ``(x_in, c_noise) -> (F_cond, F_uncond)``; ``x_in`` and ``c_noise`` are in ``dtype``.
        noise: standard normal ``[B, C, T, H, W]`` (fp32) on the device the network runs on.
        cfg: schedule and guidance.
        dtype: the network dtype (the state is rounded to it between steps).
        on_step: called with the step index after each step (timing, progress).

    Returns:
        The final latent in ``dtype``.
    """
    sigmas = karras_sigmas(cfg)
    x = noise * initial_noise_std(cfg)
    for i in range(cfg.num_steps):
        x = x.to(dtype)
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        c_in = preconditioning(sigma, cfg.sigma_data)[2]
        cond, uncond = denoise_pair(x * c_in, noise_conditioning(sigma).to(dtype))
        x = euler_step(x, guide(cond, uncond, cfg.guidance), sigma, sigma_next, cfg.sigma_data)
        if on_step is not None:
            on_step(i)
    return x


def chunk_starts(num_frames: int, chunk: int, overlap: int) -> list[int]:
    """First latent frame of each chunk: ``range(0, T - overlap, chunk - overlap)``, at least one chunk."""
    return list(range(0, max(num_frames - overlap, 1), chunk - overlap))


def reflect_index(j: int, n: int) -> int:
    """Index ``j >= 0`` folded into ``[0, n)`` by mirror reflection without repeating the edge (0 1 2 1 0 1 ...).

    For ``j < 2n - 1`` this is ``F.pad(..., mode="reflect")``; beyond that it keeps bouncing (where torch refuses).
    """
    if n == 1:
        return 0
    m = j % (2 * (n - 1))
    return m if m < n else 2 * (n - 1) - m


def split_tokens(tokens: torch.Tensor, chunk: int, overlap: int) -> list[torch.Tensor]:
    """``[B, T, H, W]`` -> chunks ``[B, chunk, H, W]`` along T, the last one completed by reflection."""
    t = tokens.shape[1]
    chunks = []
    for start in chunk_starts(t, chunk, overlap):
        avail = min(chunk, t - start)
        idx = [start + (j if j < avail else reflect_index(j, avail)) for j in range(chunk)]
        chunks.append(tokens[:, idx])
    return chunks


def blend_overlap(cfg: SamplerConfig, temporal_compression: int = 8) -> int:
    """Pixel frames two consecutive decoded chunks are cross-faded over (``SamplerConfig.blend``)."""
    if cfg.blend == "nvidia":
        return cfg.overlap
    return temporal_compression * (cfg.overlap - 1) + 1


def last_chunk_latent_frames(num_chunks: int, keep: int, chunk: int, temporal: int, overlap: int) -> int:
    """How many latent frames of the last chunk to decode so that blending ``num_chunks`` chunks (``overlap`` pixel
    frames, ``blend_overlap``) still yields ``keep`` frames: the causal decoder's prefix (``CVTokenizerDecoder``).
    A 33-frame video is one chunk of 8 latent frames, 5 of them real and 3 reflections: 5 are decoded."""
    per_chunk = 1 + temporal * (chunk - 1)
    needed = keep - (num_chunks - 1) * (per_chunk - overlap)  # pixel frames of the last chunk that are kept
    if num_chunks > 1:
        needed = max(needed, overlap)  # its blended head
    return max(1, min(chunk, 1 + -(-(needed - 1) // temporal)))


def blend_chunks(videos: list[torch.Tensor], overlap: int) -> torch.Tensor:
    """Join ``[B, C, t, H, W]`` chunks: the last ``overlap`` frames of one and the first ``overlap`` of the next are
    mixed with weights ``linspace(0, 1, overlap)`` (to the next); the last chunk may be shorter (at least ``overlap``
    frames). The result has ``(N - 1) (t - overlap) + t_last`` frames."""
    if len(videos) == 1:
        return videos[0]
    t, last = videos[0].shape[2], videos[-1].shape
    if (
        any(v.shape != videos[0].shape for v in videos[:-1])
        or last[:2] + last[3:] != videos[0].shape[:2] + videos[0].shape[3:]
        or not 0 < overlap <= min(t // 2, last[2])
    ):
        raise ValueError(f"cannot blend chunks of shapes {[tuple(v.shape) for v in videos]} over {overlap} frames")
    w = torch.linspace(0, 1, overlap, device=videos[0].device).reshape(1, 1, overlap, 1, 1)
    pieces = [videos[0][:, :, : t - overlap]]
    for i in range(1, len(videos)):
        prev, cur = videos[i - 1], videos[i]
        pieces.append((1 - w) * prev[:, :, t - overlap :] + w * cur[:, :, :overlap])
        pieces.append(cur[:, :, overlap : (t - overlap if i < len(videos) - 1 else cur.shape[2])])
    return torch.cat(pieces, dim=2)
